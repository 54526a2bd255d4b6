//! The credit ledger. Every change to a balance is one transaction that also writes a ledger
//! entry; reservation and release of a job are unique per job, so each happens exactly once.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, Set};

use crate::tables::{JobId, UserId, credit_balance, credit_entry};
use crate::{Result, Store, StoreError};

pub use credit_balance::Model as Balance;

/// Makes sure `user` has a balance row.
pub(crate) async fn ensure_balance(db: &impl ConnectionTrait, user: UserId) -> Result<()> {
    credit_balance::Entity::insert(credit_balance::ActiveModel {
        user_id: Set(user),
        available: Set(0),
        reserved: Set(0),
        settled: Set(0),
        granted: Set(0),
    })
    .on_conflict_do_nothing_on([credit_balance::Column::UserId])
    .exec(db)
    .await?;
    Ok(())
}

pub(crate) async fn entry(
    db: &impl ConnectionTrait,
    user: UserId,
    job: Option<JobId>,
    kind: &str,
    amount: i64,
    charged: i64,
    note: &str,
    now: i64,
) -> Result<()> {
    credit_entry::Entity::insert(credit_entry::ActiveModel {
        id: NotSet,
        user_id: Set(user),
        job_id: Set(job),
        kind: Set(kind.to_owned()),
        amount: Set(amount),
        charged: Set(charged),
        note: Set(note.to_owned()),
        created_at: Set(now),
    })
    .exec(db)
    .await
    .map_err(|e| crate::conflict_or(e, "this ledger entry"))?;
    Ok(())
}

/// Moves `amount` from available to reserved, or fails with `InsufficientCredits` and changes
/// nothing. The condition is in the UPDATE, so two concurrent reservations cannot overdraw.
pub(crate) async fn reserve(db: &impl ConnectionTrait, user: UserId, amount: i64) -> Result<()> {
    ensure_balance(db, user).await?;
    let res = credit_balance::Entity::update_many()
        .col_expr(
            credit_balance::Column::Available,
            Expr::col(credit_balance::Column::Available).sub(amount),
        )
        .col_expr(
            credit_balance::Column::Reserved,
            Expr::col(credit_balance::Column::Reserved).add(amount),
        )
        .filter(credit_balance::Column::UserId.eq(user))
        .filter(credit_balance::Column::Available.gte(amount))
        .exec(db)
        .await?;
    if res.rows_affected == 1 {
        return Ok(());
    }
    let available = credit_balance::Entity::find_by_id(user)
        .one(db)
        .await?
        .map(|b| b.available)
        .unwrap_or(0);
    Err(StoreError::InsufficientCredits { needed: amount, available })
}

/// Closes a reservation of `reserved`: `charged` (at most `reserved`) is settled, the rest
/// goes back to available.
pub(crate) async fn release(db: &impl ConnectionTrait, user: UserId, reserved: i64, charged: i64) -> Result<()> {
    let charged = charged.clamp(0, reserved);
    credit_balance::Entity::update_many()
        .col_expr(
            credit_balance::Column::Reserved,
            Expr::col(credit_balance::Column::Reserved).sub(reserved),
        )
        .col_expr(
            credit_balance::Column::Available,
            Expr::col(credit_balance::Column::Available).add(reserved - charged),
        )
        .col_expr(
            credit_balance::Column::Settled,
            Expr::col(credit_balance::Column::Settled).add(charged),
        )
        .filter(credit_balance::Column::UserId.eq(user))
        .exec(db)
        .await?;
    Ok(())
}

impl Store {
    /// Adds credits to a user's balance (an administrator's grant, or the sign-up grant).
    pub async fn grant_credits(&self, user: UserId, amount: i64, note: &str, now: i64) -> Result<Balance> {
        if amount <= 0 {
            return Err(StoreError::Invalid {
                message: format!("a grant must be positive, got {amount}"),
            });
        }
        let txn = self.begin_write().await?;
        ensure_balance(&txn, user).await?;
        credit_balance::Entity::update_many()
            .col_expr(
                credit_balance::Column::Available,
                Expr::col(credit_balance::Column::Available).add(amount),
            )
            .col_expr(
                credit_balance::Column::Granted,
                Expr::col(credit_balance::Column::Granted).add(amount),
            )
            .filter(credit_balance::Column::UserId.eq(user))
            .exec(&txn)
            .await?;
        entry(&txn, user, None, "grant", amount, 0, note, now).await?;
        let balance = credit_balance::Entity::find_by_id(user)
            .one(&txn)
            .await?
            .expect("balance row just ensured");
        txn.commit().await?;
        Ok(balance)
    }

    /// The user's balance (all zero when nothing was ever granted).
    pub async fn credit_balance(&self, user: UserId) -> Result<Balance> {
        Ok(credit_balance::Entity::find_by_id(user).one(&self.db).await?.unwrap_or(Balance {
            user_id: user,
            available: 0,
            reserved: 0,
            settled: 0,
            granted: 0,
        }))
    }

    /// The user's ledger, oldest first.
    pub async fn credit_entries(&self, user: UserId) -> Result<Vec<credit_entry::Model>> {
        Ok(credit_entry::Entity::find()
            .filter(credit_entry::Column::UserId.eq(user))
            .order_by_asc(credit_entry::Column::Id)
            .all(&self.db)
            .await?)
    }
}
