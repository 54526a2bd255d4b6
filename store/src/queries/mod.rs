//! Query methods on [`crate::Store`], grouped by the tables they touch.

pub(crate) mod assets;
pub(crate) mod audit;
pub(crate) mod credits;
pub(crate) mod documents;
pub(crate) mod jobs;
pub(crate) mod projects;
pub(crate) mod users;
