//! A full-screen text view on the terminal's alternate screen, redrawn in
//! place. Used by the single-instance status screen and the dashboard; what
//! is drawn comes from the pure renderers next to it.

use crossterm::{cursor, execute, queue, terminal};
use std::io::Write;

/// The alternate screen while it is active.
pub struct Screen {
    active: bool,
}

impl Screen {
    /// Enters the alternate screen when `enabled` and stdout allows it.
    pub fn new(enabled: bool) -> Screen {
        let active = enabled && execute!(std::io::stdout(), terminal::EnterAlternateScreen, cursor::Hide).is_ok();
        Screen { active }
    }

    /// Whether the screen is up.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Terminal width in columns (80 when unknown).
    pub fn width(&self) -> usize {
        terminal::size().map(|(w, _)| w as usize).unwrap_or(80)
    }

    /// Replaces the screen's content with `text`.
    pub fn draw(&self, text: &str) {
        if !self.active {
            return;
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

    /// Leaves the alternate screen (restoring what the terminal showed).
    pub fn leave(&mut self) {
        if self.active {
            let _ = execute!(std::io::stdout(), cursor::Show, terminal::LeaveAlternateScreen);
            self.active = false;
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.leave();
    }
}
