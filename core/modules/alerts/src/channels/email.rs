//! (being written in another branch)
use crate::channels::{Channel, Common};
/// Placeholder until merged.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct EmailConfig {}
/// Placeholder until merged.
pub fn open(_c: &Common, _cfg: &EmailConfig) -> Result<Box<dyn Channel>, String> {
    Err("not built yet".into())
}
