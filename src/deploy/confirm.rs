//! The questions `apply` and `destroy` ask before they change anything, and
//! the rules for when an answer is needed:
//!
//! - without `--yes`, a terminal is asked `[y/N]`; without a terminal the
//!   command refuses (a CI job must say `--yes` explicitly);
//! - in `prod`, replacing or deleting a data store (and `destroy`) also needs
//!   the environment's name typed, or given with `--confirm-env NAME`;
//!   `--yes` alone is never enough for that.
//!
//! [`Prompter`] answers: [`TerminalPrompter`] asks on stderr and reads
//! stdin; [`ScriptedPrompter`] is for tests.

use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;

use super::progress::Progress;
use super::DeployError;

pub trait Prompter: Send + Sync + std::fmt::Debug {
    /// Someone can answer (stdin is a terminal).
    fn interactive(&self) -> bool;
    /// Asks `question`; returns the typed line (trimmed), `None` on end of input.
    fn ask(&self, question: &str) -> Option<String>;
}

/// Asks on stderr, reads a line from stdin.
#[derive(Debug, Default)]
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn interactive(&self) -> bool {
        std::io::stdin().is_terminal()
    }

    fn ask(&self, question: &str) -> Option<String> {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question} ");
        let _ = err.flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim().to_owned()),
        }
    }
}

/// Answers from a list, recording the questions.
#[derive(Debug)]
pub struct ScriptedPrompter {
    interactive: bool,
    answers: Mutex<VecDeque<String>>,
    asked: Mutex<Vec<String>>,
}

impl ScriptedPrompter {
    pub fn new(interactive: bool, answers: &[&str]) -> Self {
        ScriptedPrompter {
            interactive,
            answers: Mutex::new(answers.iter().map(|s| (*s).to_owned()).collect()),
            asked: Mutex::new(Vec::new()),
        }
    }

    /// The questions asked so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

impl Prompter for ScriptedPrompter {
    fn interactive(&self) -> bool {
        self.interactive
    }

    fn ask(&self, question: &str) -> Option<String> {
        if let Ok(mut a) = self.asked.lock() {
            a.push(question.to_owned());
        }
        self.answers.lock().ok().and_then(|mut a| a.pop_front())
    }
}

/// `[y/N]` on the prompter, with progress bars hidden while asking.
pub fn yes_no(prompter: &dyn Prompter, progress: &Progress, question: &str) -> bool {
    progress
        .suspend(|| prompter.ask(&format!("{question} [y/N]")))
        .is_some_and(|a| matches!(a.to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// What the user agreed to before a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Proceed,
    Declined,
}

/// The confirmation rules above. `typed_name_required` is set for prod when
/// data would be lost.
pub fn confirm(
    action: &'static str,
    environment: &str,
    yes: bool,
    typed_name_required: bool,
    confirm_env: Option<&str>,
    prompter: &dyn Prompter,
    progress: &Progress,
) -> Result<Decision, DeployError> {
    if !yes {
        if !prompter.interactive() {
            return Err(DeployError::Refused {
                action,
                reason: "stdin is not a terminal, so nobody can confirm; review the plan and re-run with --yes".into(),
            });
        }
        if !yes_no(
            prompter,
            progress,
            &format!("{action} `{environment}` as planned above?"),
        ) {
            return Ok(Decision::Declined);
        }
    }
    if typed_name_required {
        if let Some(given) = confirm_env {
            if given == environment {
                return Ok(Decision::Proceed);
            }
            return Err(DeployError::Refused {
                action,
                reason: format!(
                    "--confirm-env `{given}` does not match the environment `{environment}`"
                ),
            });
        }
        if !prompter.interactive() {
            return Err(DeployError::Refused {
                action,
                reason: format!(
                    "`{environment}` is production and data would be lost; type the name on a terminal or pass --confirm-env {environment}"
                ),
            });
        }
        let typed = progress.suspend(|| {
            prompter.ask(&format!(
                "This is production and data will be lost. Type `{environment}` to {action}:"
            ))
        });
        if typed.as_deref() != Some(environment) {
            return Ok(Decision::Declined);
        }
    }
    Ok(Decision::Proceed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Progress {
        Progress::plain(Box::new(std::io::sink()))
    }

    #[test]
    fn yes_skips_the_question_but_not_the_typed_name() {
        let p = ScriptedPrompter::new(true, &["prod"]);
        let d = confirm("apply", "prod", true, true, None, &p, &quiet()).expect("ok");
        assert_eq!(d, Decision::Proceed);
        assert_eq!(p.asked().len(), 1);
        assert!(p.asked()[0].contains("Type `prod`"));
    }

    #[test]
    fn no_terminal_without_yes_is_refused() {
        let p = ScriptedPrompter::new(false, &[]);
        let err = confirm("apply", "dev", false, false, None, &p, &quiet()).expect_err("refused");
        assert!(err.to_string().contains("--yes"), "{err}");
        assert!(p.asked().is_empty());
    }

    #[test]
    fn wrong_name_declines_and_confirm_env_must_match() {
        let p = ScriptedPrompter::new(true, &["y", "staging"]);
        assert_eq!(
            confirm("destroy", "prod", false, true, None, &p, &quiet()).expect("ok"),
            Decision::Declined
        );
        let p = ScriptedPrompter::new(false, &[]);
        assert!(confirm("destroy", "prod", true, true, Some("dev"), &p, &quiet()).is_err());
        assert_eq!(
            confirm("destroy", "prod", true, true, Some("prod"), &p, &quiet()).expect("ok"),
            Decision::Proceed
        );
        let p = ScriptedPrompter::new(true, &["n"]);
        assert_eq!(
            confirm("apply", "dev", false, false, None, &p, &quiet()).expect("ok"),
            Decision::Declined
        );
    }
}
