//! Users and their bearer tokens.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, Set};

use crate::tables::{UserId, auth_token, user};
use crate::{Result, Store, StoreError, User, conflict_or};

impl Store {
    pub async fn create_user(&self, email: &str, display_name: &str, password_hash: &str, is_admin: bool, now: i64) -> Result<User> {
        let model = user::ActiveModel {
            id: NotSet,
            email: Set(email.to_owned()),
            display_name: Set(display_name.to_owned()),
            password_hash: Set(password_hash.to_owned()),
            is_admin: Set(is_admin),
            created_at: Set(now),
            confirm_above_credits: Set(None),
        };
        model.insert(&self.db).await.map_err(|e| conflict_or(e, "a user with this email"))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(user::Entity::find().filter(user::Column::Email.eq(email)).one(&self.db).await?)
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        Ok(user::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Stores a token's hash for `user`, valid until `expires_at`.
    pub async fn insert_token(&self, user: UserId, token_hash: &str, now: i64, expires_at: i64) -> Result<()> {
        let model = auth_token::ActiveModel {
            id: NotSet,
            user_id: Set(user),
            token_hash: Set(token_hash.to_owned()),
            created_at: Set(now),
            expires_at: Set(expires_at),
        };
        model.insert(&self.db).await.map_err(|e| conflict_or(e, "this token"))?;
        Ok(())
    }

    /// The user a token hash belongs to, if it exists and has not expired.
    pub async fn user_by_token_hash(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        let Some(token) = auth_token::Entity::find()
            .filter(auth_token::Column::TokenHash.eq(token_hash))
            .filter(auth_token::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        self.user_by_id(token.user_id).await
    }

    /// Revokes one token (logout).
    pub async fn delete_token(&self, token_hash: &str) -> Result<()> {
        let res = auth_token::Entity::delete_many()
            .filter(auth_token::Column::TokenHash.eq(token_hash))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound { what: "token" });
        }
        Ok(())
    }

    /// Sets the credit estimate above which a job needs confirmation (`None`: never).
    pub async fn set_confirm_threshold(&self, user: UserId, threshold: Option<i64>) -> Result<()> {
        user::Entity::update_many()
            .col_expr(user::Column::ConfirmAboveCredits, sea_orm::sea_query::Expr::value(threshold))
            .filter(user::Column::Id.eq(user))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Makes a user an administrator (the `moviola admin promote` command).
    pub async fn set_admin(&self, user: UserId, admin: bool) -> Result<()> {
        user::Entity::update_many()
            .col_expr(user::Column::IsAdmin, sea_orm::sea_query::Expr::value(admin))
            .filter(user::Column::Id.eq(user))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
