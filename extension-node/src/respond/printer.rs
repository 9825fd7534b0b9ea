//! A network printer's own ports: LPD (RFC 1179) on 515 answers a queue
//! query with "no entries" and anything else the way an HP JetDirect card
//! refuses it; raw printing on 9100 takes PJL, answers `@PJL INFO ID` and
//! `@PJL INFO STATUS` with the profile's model, and swallows the rest, as
//! a printer does with a print job.

use super::{Context, Logins, Out, Step};

/// The JetDirect card's host name, as its LPD names itself.
const HOST: &str = "NPI3A5F21";
/// The model PJL reports.
const MODEL: &str = "HP LaserJet Pro M404n";

/// An LPD connection.
#[derive(Debug, Default)]
pub struct Lpd {}

impl Lpd {
    /// Answers the one command line an LPD connection carries.
    pub fn input(
        &mut self,
        _cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        _logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        let Some(&command) = input.first() else {
            return (0, Step::More);
        };
        match command {
            // Short and long queue state.
            3 | 4 if input.contains(&b'\n') => {
                out.text("no entries\n");
                (input.len(), Step::Close)
            }
            3 | 4 if input.len() < 512 => (0, Step::More),
            // Print jobs and removals need a queue we do not have.
            1 | 2 | 5 => (input.len(), Step::Close),
            _ => {
                out.text(HOST);
                out.text(": lpd: Illegal service request\n");
                (input.len(), Step::Close)
            }
        }
    }
}

/// A raw printing (JetDirect) connection.
#[derive(Debug, Default)]
pub struct Pjl {}

impl Pjl {
    /// Answers the PJL queries among the bytes of a print job.
    pub fn input(
        &mut self,
        _cx: &Context<'_>,
        input: &[u8],
        out: &mut Out,
        _logins: &mut Logins<'_>,
    ) -> (usize, Step) {
        // Only whole lines: a query split across reads is answered once
        // its end arrives.
        let Some(end) = input.iter().rposition(|&b| b == b'\n') else {
            return (
                if input.len() >= 1024 { input.len() } else { 0 },
                Step::More,
            );
        };
        let lines = input.get(..=end).unwrap_or_default();
        for line in lines.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let at = line
                .windows(4)
                .position(|w| w.eq_ignore_ascii_case(b"@PJL"));
            let Some(command) = at.and_then(|i| line.get(i..)) else {
                continue;
            };
            if command.eq_ignore_ascii_case(b"@PJL INFO ID") {
                out.text(&format!("@PJL INFO ID\r\n\"{MODEL}\"\r\n\x0c"));
            } else if command.eq_ignore_ascii_case(b"@PJL INFO STATUS") {
                out.text(
                    "@PJL INFO STATUS\r\nCODE=10001\r\nDISPLAY=\"Ready\"\r\nONLINE=TRUE\r\n\x0c",
                );
            }
        }
        (end + 1, Step::More)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cx, run};
    use super::*;
    use crate::profile::Profile;

    #[test]
    fn lpd_lists_no_entries_and_refuses_the_rest() {
        let (out, _, step) = run(&cx(515, Profile::Printer), &[b"\x03", b"lp\n"]);
        assert_eq!((out.as_str(), step), ("no entries\n", Step::Close));
        let (out, _, step) = run(&cx(515, Profile::Printer), &[b"GET / HTTP/1.0\r\n\r\n"]);
        assert_eq!(out, "NPI3A5F21: lpd: Illegal service request\n");
        assert_eq!(step, Step::Close);
        let (out, _, step) = run(&cx(515, Profile::Printer), &[b"\x02lp\n"]);
        assert_eq!((out.as_str(), step), ("", Step::Close));
    }

    #[test]
    fn pjl_info_id_names_the_model_and_print_data_is_swallowed() {
        let (out, _, step) = run(
            &cx(9100, Profile::Printer),
            &[
                b"\x1b%-12345X@PJL INFO ID\r\n\x1b%-12345X\r\n",
                b"%!PS-Adobe\n<<garbage>>\n",
            ],
        );
        assert_eq!(out, "@PJL INFO ID\r\n\"HP LaserJet Pro M404n\"\r\n\x0c");
        assert_eq!(step, Step::More);
        let (out, _, _) = run(&cx(9100, Profile::Printer), &[b"@PJL INFO ST", b"ATUS\r\n"]);
        assert!(out.starts_with("@PJL INFO STATUS\r\nCODE=10001"), "{out}");
    }
}
