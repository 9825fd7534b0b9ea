//! The command-line loop every program runs: `--flag value` and
//! `--flag=value` alike, and a clear error for a flag left without its
//! value.

/// The arguments (without the program name), one flag at a time.
#[derive(Debug)]
pub struct Args<'a> {
    it: std::slice::Iter<'a, String>,
}

impl<'a> Args<'a> {
    /// Walks `args`.
    pub fn new(args: &'a [String]) -> Args<'a> {
        Args { it: args.iter() }
    }

    /// The next argument: `--flag=value` is split into the flag and its
    /// inline value; anything else comes whole, with no inline value.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(&'a str, Option<String>)> {
        let arg = self.it.next()?;
        Some(match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        })
    }

    /// The value of `flag`: its inline value, or the next argument.
    pub fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, String> {
        match inline {
            Some(v) => Ok(v),
            None => self
                .it
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn inline_and_separate_values_and_plain_words() {
        let a = argv(&["full", "--port", "1", "--name=a=b", "-h", "x=y"]);
        let mut args = Args::new(&a);
        assert_eq!(args.next(), Some(("full", None)));
        let (f, v) = args.next().unwrap();
        assert_eq!(args.value(f, v).unwrap(), "1");
        let (f, v) = args.next().unwrap();
        assert_eq!((f, args.value(f, v).unwrap().as_str()), ("--name", "a=b"));
        assert_eq!(args.next(), Some(("-h", None)));
        // Only `--` flags carry inline values.
        assert_eq!(args.next(), Some(("x=y", None)));
        assert_eq!(args.next(), None);
    }

    #[test]
    fn a_flag_at_the_end_without_its_value_is_named() {
        let a = argv(&["--port"]);
        let mut args = Args::new(&a);
        let (f, v) = args.next().unwrap();
        assert_eq!(args.value(f, v), Err("--port needs a value".to_string()));
        let a = argv(&["--token="]);
        let mut args = Args::new(&a);
        let (f, v) = args.next().unwrap();
        assert_eq!(
            args.value(f, v).unwrap(),
            "",
            "an empty inline value is a value"
        );
    }
}
