//! (being written in another branch)
use crate::channels::{Channel, Common};
/// Placeholder until merged.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SyslogConfig {}
/// Placeholder until merged.
pub fn open(_c: &Common, _cfg: &SyslogConfig) -> Result<Box<dyn Channel>, String> {
    Err("not built yet".into())
}
