//! Live progress of `apply` and `destroy` on stdout, in one of two forms:
//!
//! - **tty**: one indicatif spinner per stack (status and elapsed time) and,
//!   under it, one per resource in progress; failures are printed above the
//!   bars as they happen.
//! - **plain** (CI logs, files, pipes): one line per stack event and per
//!   lifecycle step, never redrawn, each starting with a UTC timestamp (the
//!   event's own time for events) so logs can be read after the fact:
//!
//! ```text
//! 2024-05-01T12:00:03Z memory        CREATE_IN_PROGRESS         ConversationTable AWS::DynamoDB::Table
//! ```
//!
//! The deploy logic (`apply.rs`, `destroy.rs`) calls [`Progress`] from
//! concurrent stack tasks; every method takes `&self`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudformation::primitives::{DateTime, DateTimeFormat};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stacks::stacks::StackId;

use crate::aws::cloudformation::StackEvent;

/// `2024-05-01T12:00:03Z` (whole seconds, UTC).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DateTime::from_secs(secs as i64)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
}

/// Where progress goes. Cheap to share by reference between stack tasks.
#[derive(Debug)]
pub struct Progress {
    inner: Mutex<Inner>,
}

struct Inner {
    out: Box<dyn Write + Send>,
    tty: Option<Tty>,
}

impl Inner {
    /// One timestamped line for a stack, the plain (CI) form of every update.
    fn plain_line(&mut self, stack: StackId, message: &str) {
        let line = format!(
            "{} {:<13} {message}\n",
            timestamp(SystemTime::now()),
            stack.name()
        );
        // Best effort, like the bars: a closed stdout must not stop a deploy.
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("tty", &self.tty.is_some())
            .finish()
    }
}

struct Tty {
    multi: MultiProgress,
    stacks: BTreeMap<StackId, ProgressBar>,
    resources: BTreeMap<(StackId, String), ProgressBar>,
    stack_style: ProgressStyle,
    resource_style: ProgressStyle,
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants; a typo would only lose the layout.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Progress {
    /// One line per event on `out`.
    pub fn plain(out: Box<dyn Write + Send>) -> Self {
        Progress {
            inner: Mutex::new(Inner { out, tty: None }),
        }
    }

    /// Spinners redrawn on stdout (a terminal).
    pub fn tty() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let tty = Tty {
            multi,
            stacks: BTreeMap::new(),
            resources: BTreeMap::new(),
            stack_style: style("{spinner:.cyan} {prefix:14.bold} {wide_msg} {elapsed:>5}"),
            resource_style: style("    {prefix:40.dim} {wide_msg} {elapsed:>5}"),
        };
        Progress {
            inner: Mutex::new(Inner {
                out: Box::new(std::io::stdout()),
                tty: Some(tty),
            }),
        }
    }

    pub fn mode(&self) -> Mode {
        if self.lock().tty.is_some() {
            Mode::Tty
        } else {
            Mode::Plain
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Progress output is best effort: a panic elsewhere must not hide
        // the rest of the run's output.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Text as is (the plan, summaries): above the bars on a terminal.
    pub fn text(&self, text: &str) {
        let mut inner = self.lock();
        match &inner.tty {
            // While bars are live, text goes above them; once every bar has
            // finished, below them, so summaries read after the stack lines.
            Some(t) if t.stacks.values().any(|b| !b.is_finished()) => {
                for line in text.lines() {
                    let _ = t.multi.println(line);
                }
            }
            _ => {
                let _ = inner.out.write_all(text.as_bytes());
                let _ = inner.out.flush();
            }
        }
    }

    /// A lifecycle step of one stack ("executing change set …").
    pub fn note(&self, stack: StackId, message: &str) {
        let mut inner = self.lock();
        match &mut inner.tty {
            Some(t) => {
                if let Some(bar) = t.stacks.get(&stack) {
                    bar.set_message(message.to_owned());
                } else {
                    let _ = t.multi.println(format!("{:<14} {message}", stack.name()));
                }
            }
            None => inner.plain_line(stack, message),
        }
    }

    /// A stack starts an operation.
    pub fn start(&self, stack: StackId, message: &str) {
        let mut inner = self.lock();
        match &mut inner.tty {
            Some(t) => {
                let bar = t.multi.add(ProgressBar::new_spinner());
                bar.set_style(t.stack_style.clone());
                bar.set_prefix(stack.name());
                bar.set_message(message.to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                t.stacks.insert(stack, bar);
            }
            None => inner.plain_line(stack, message),
        }
    }

    /// A stack event CloudFormation reported.
    pub fn event(&self, stack: StackId, e: &StackEvent) {
        let mut inner = self.lock();
        match &mut inner.tty {
            Some(t) => t.event(stack, e),
            None => {
                let what = if e.is_stack_level() {
                    "stack".to_owned()
                } else {
                    format!("{} {}", e.logical_id, e.resource_type)
                };
                let reason = e
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                let line = format!(
                    "{} {:<13} {:<26} {what}{reason}\n",
                    timestamp(e.timestamp),
                    stack.name(),
                    e.status
                );
                let _ = inner.out.write_all(line.as_bytes());
                let _ = inner.out.flush();
            }
        }
    }

    /// A stack's operation ended.
    pub fn finish(&self, stack: StackId, ok: bool, message: &str) {
        let mut inner = self.lock();
        match &mut inner.tty {
            Some(t) => {
                let keys: Vec<_> = t
                    .resources
                    .keys()
                    .filter(|(s, _)| *s == stack)
                    .cloned()
                    .collect();
                for k in keys {
                    if let Some(bar) = t.resources.remove(&k) {
                        bar.finish_and_clear();
                    }
                }
                let mark = if ok { "✓" } else { "✗" };
                match t.stacks.get(&stack) {
                    Some(bar) => {
                        bar.set_style(style("{prefix:16.bold} {wide_msg} {elapsed:>5}"));
                        bar.set_prefix(format!("{mark} {}", stack.name()));
                        bar.finish_with_message(message.to_owned());
                    }
                    None => {
                        let _ = t
                            .multi
                            .println(format!("{mark} {:<14} {message}", stack.name()));
                    }
                }
            }
            None => inner.plain_line(stack, message),
        }
    }

    /// Runs `f` (a prompt) with the bars hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        let inner = self.lock();
        match &inner.tty {
            Some(t) => t.multi.suspend(f),
            None => f(),
        }
    }
}

impl Tty {
    fn event(&mut self, stack: StackId, e: &StackEvent) {
        if e.is_stack_level() {
            if let Some(bar) = self.stacks.get(&stack) {
                bar.set_message(e.status.clone());
            }
            return;
        }
        let key = (stack, e.logical_id.clone());
        let done = e.status.ends_with("_COMPLETE")
            || e.status.ends_with("_FAILED")
            || e.status.ends_with("_SKIPPED");
        if e.status.ends_with("_FAILED")
            && !e.reason.as_deref().is_some_and(super::is_cancellation_echo)
        {
            let reason = e.reason.as_deref().unwrap_or("(no reason given)");
            let _ = self.multi.println(format!(
                "✗ {stack}/{} {} {}: {reason}",
                e.logical_id, e.resource_type, e.status
            ));
        }
        if done {
            if let Some(bar) = self.resources.remove(&key) {
                bar.finish_and_clear();
            }
            return;
        }
        let bar = match self.resources.get(&key) {
            Some(bar) => bar.clone(),
            None => {
                let bar = ProgressBar::new_spinner();
                let bar = match self.stacks.get(&stack) {
                    Some(parent) => self.multi.insert_after(parent, bar),
                    None => self.multi.add(bar),
                };
                bar.set_style(self.resource_style.clone());
                bar.set_prefix(format!("{} {}", e.logical_id, e.resource_type));
                bar.enable_steady_tick(Duration::from_millis(250));
                self.resources.insert(key, bar.clone());
                bar
            }
        };
        bar.set_message(e.status.clone());
    }
}
