//! SMB: for now the client's negotiate is read for its fingerprint and the
//! connection closes (the negotiate answer and NTLM capture come next).

use super::{Context, Logins, Out, Step};

/// An SMB connection.
#[derive(Debug, Default)]
pub struct Smb {}

impl Smb {
    /// Reads what the client sends, then closes.
    pub fn input(
        &mut self,
        _cx: &Context<'_>,
        input: &[u8],
        _out: &mut Out,
        _logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        (input.len(), Step::Linger)
    }
}
