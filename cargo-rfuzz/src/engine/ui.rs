//! Drawing an instance's progress: the full-screen status on a terminal, or
//! plain lines. What is drawn comes from the pure renderers in `report`.

use super::config::UiMode;
use crate::report::screen::Screen;
use crate::report::{InstanceStats, status};
use std::time::{Duration, Instant};

/// Progress output of one instance.
pub struct Ui {
    mode: UiMode,
    screen: Screen,
    next_plain: Instant,
    /// Lines shown under the status screen (crash notices).
    pub notices: Vec<String>,
}

impl Ui {
    /// Starts the UI (enters the alternate screen in `Screen` mode).
    pub fn new(mode: UiMode) -> Ui {
        Ui {
            mode,
            screen: Screen::new(mode == UiMode::Screen),
            next_plain: Instant::now() + Duration::from_secs(2),
            notices: Vec::new(),
        }
    }

    /// Shows a snapshot (called about once a second).
    pub fn update(&mut self, s: &InstanceStats, now_unix: u64) {
        if self.screen.is_active() {
            let mut text = status::render(s, now_unix, self.screen.width());
            for n in &self.notices {
                text.push_str(n);
                text.push('\n');
            }
            self.screen.draw(&text);
        } else if self.mode == UiMode::Plain {
            let now = Instant::now();
            if now >= self.next_plain {
                eprintln!("{}", status::plain_line(s));
                self.next_plain = now + Duration::from_secs(10);
            }
        }
    }

    /// Reports something the user must see (a first crash): printed at once
    /// without a status screen, kept on screen and repeated at exit with one.
    pub fn notice(&mut self, text: String) {
        if self.screen.is_active() {
            self.notices.push(text);
        } else {
            eprintln!("{text}");
        }
    }

    /// Leaves the alternate screen and prints the notices kept there.
    pub fn finish(&mut self) {
        if self.screen.is_active() {
            self.screen.leave();
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
