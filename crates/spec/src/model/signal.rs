//! The signals kiln may send to stop an instance.

/// A signal by its Linux (x86_64) number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Signal {
    #[serde(rename = "SIGHUP")]
    Hup,
    #[serde(rename = "SIGINT")]
    Int,
    #[serde(rename = "SIGQUIT")]
    Quit,
    #[serde(rename = "SIGKILL")]
    Kill,
    #[serde(rename = "SIGUSR1")]
    Usr1,
    #[serde(rename = "SIGUSR2")]
    Usr2,
    #[serde(rename = "SIGTERM")]
    Term,
    #[serde(rename = "SIGWINCH")]
    Winch,
}

impl Signal {
    /// Every signal a spec may name, by number.
    pub const ALL: [Signal; 8] = [
        Signal::Hup,
        Signal::Int,
        Signal::Quit,
        Signal::Kill,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Term,
        Signal::Winch,
    ];

    /// "SIGTERM".
    pub fn name(&self) -> &'static str {
        match self {
            Signal::Hup => "SIGHUP",
            Signal::Int => "SIGINT",
            Signal::Quit => "SIGQUIT",
            Signal::Kill => "SIGKILL",
            Signal::Usr1 => "SIGUSR1",
            Signal::Usr2 => "SIGUSR2",
            Signal::Term => "SIGTERM",
            Signal::Winch => "SIGWINCH",
        }
    }

    pub fn number(&self) -> i32 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Quit => 3,
            Signal::Kill => 9,
            Signal::Usr1 => 10,
            Signal::Usr2 => 12,
            Signal::Term => 15,
            Signal::Winch => 28,
        }
    }

    /// By name, with or without `SIG`, in any case: "SIGTERM", "TERM", "sigterm".
    pub fn from_name(name: &str) -> Option<Signal> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL.into_iter().find(|s| &s.name()[3..] == bare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for name in ["SIGTERM", "TERM", "sigterm", "Term"] {
            assert_eq!(Signal::from_name(name), Some(Signal::Term), "{name}");
        }
        assert_eq!(Signal::from_name("SIGSTOP"), None);
        assert_eq!(Signal::from_name("SIG"), None);
        assert_eq!(Signal::from_name(""), None);
        assert_eq!(Signal::Winch.name(), "SIGWINCH");
        assert_eq!(Signal::Winch.number(), 28);
        assert_eq!(
            Signal::ALL.map(|s| s.number()),
            [1, 2, 3, 9, 10, 12, 15, 28]
        );
    }
}
