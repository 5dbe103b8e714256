//! Drawing an instance's progress: the full-screen status on a terminal, or
//! plain lines. What is drawn comes from the pure renderers in `report`.

use super::config::UiMode;
use crate::report::{InstanceStats, status};
use crossterm::{cursor, execute, queue, terminal};
use std::io::Write;
use std::time::{Duration, Instant};

/// Progress output of one instance.
pub struct Ui {
    mode: UiMode,
    active: bool,
    next_plain: Instant,
    /// Lines shown under the status screen (crash notices).
    pub notices: Vec<String>,
}

impl Ui {
    /// Starts the UI (enters the alternate screen in `Screen` mode).
    pub fn new(mode: UiMode) -> Ui {
        let mut ui =
            Ui { mode, active: false, next_plain: Instant::now() + Duration::from_secs(2), notices: Vec::new() };
        if mode == UiMode::Screen {
            let mut out = std::io::stdout();
            ui.active = execute!(out, terminal::EnterAlternateScreen, cursor::Hide).is_ok();
        }
        ui
    }

    /// Shows a snapshot (called about once a second).
    pub fn update(&mut self, s: &InstanceStats, now_unix: u64) {
        match self.mode {
            UiMode::Screen if self.active => {
                let width = terminal::size().map(|(w, _)| w as usize).unwrap_or(80);
                let mut text = status::render(s, now_unix, width);
                for n in &self.notices {
                    text.push_str(n);
                    text.push('\n');
                }
                let mut out = std::io::stdout().lock();
                let _ = queue!(out, cursor::MoveTo(0, 0));
                for line in text.lines() {
                    let _ = write!(out, "{line}");
                    let _ = queue!(out, terminal::Clear(terminal::ClearType::UntilNewLine));
                    let _ = write!(out, "\r\n");
                }
                let _ = queue!(out, terminal::Clear(terminal::ClearType::FromCursorDown));
                let _ = out.flush();
            }
            UiMode::Plain => {
                let now = Instant::now();
                if now >= self.next_plain {
                    eprintln!("{}", status::plain_line(s));
                    self.next_plain = now + Duration::from_secs(10);
                }
            }
            _ => {}
        }
    }

    /// Reports something the user must see (a first crash): printed at once
    /// without a status screen, kept on screen and repeated at exit with one.
    pub fn notice(&mut self, text: String) {
        if self.mode == UiMode::Screen && self.active {
            self.notices.push(text);
        } else {
            eprintln!("{text}");
        }
    }

    /// Leaves the alternate screen and prints the notices kept there.
    pub fn finish(&mut self) {
        if self.active {
            let mut out = std::io::stdout();
            let _ = execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
            self.active = false;
            for n in self.notices.drain(..) {
                eprintln!("{n}");
            }
        }
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.finish();
    }
}
