//! Reading a child's output in constant memory: the last [`LIMIT`] bytes are kept
//! (what errors show), every complete line is streamed to the sink for --verbose,
//! and the reader never holds the caller past a deadline (a grandchild may keep
//! the pipe open after the child exits).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use crate::model::{Event, Sink, Stage};

/// Bytes of output kept per stream.
pub const LIMIT: usize = 16 << 20;
/// Longest line streamed to the sink; the rest of a longer line is cut.
const LINE_LIMIT: usize = 64 << 10;

/// Where each complete line goes besides the kept tail.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// To the sink's child output (shown with --verbose).
    Verbose,
    /// As the command's answer (an `Output` event: `logs`).
    Answer,
    /// Lines `[name HH:MM:SS] text` are progress notes; others as `Verbose`.
    Progress,
}

/// The text of a recipe's progress line `[name HH:MM:SS] text`.
pub fn progress_text(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (tag, text) = rest.split_once("] ")?;
    let time = tag.rsplit(' ').next()?;
    (time.len() == 8 && time.bytes().filter(|b| *b == b':').count() == 2).then_some(text)
}

pub struct Capture {
    kept: Arc<Mutex<Kept>>,
    done: mpsc::Receiver<()>,
}

/// The last bytes of a stream, and whether its start was dropped.
#[derive(Default)]
struct Kept {
    bytes: VecDeque<u8>,
    cut: bool,
}

/// A line longer than [`LINE_LIMIT`], cut: masked first, then shortened by the
/// longest masked form (less a byte), so the end of what is shown cannot be the
/// start of a secret that went on past the cut.
fn cut_line(sink: &dyn Sink, line: &[u8]) -> String {
    let r = sink.redactor();
    let masked = r.redact(&String::from_utf8_lossy(line));
    let mut keep = masked.len().saturating_sub(r.longest().saturating_sub(1));
    while !masked.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{} [line cut]", &masked[..keep])
}

impl Capture {
    pub fn start(
        stage: Stage,
        pipe: Option<impl Read + Send + 'static>,
        sink: Arc<dyn Sink>,
        lines: Lines,
    ) -> Capture {
        let (tx, done) = mpsc::channel();
        let kept = Arc::new(Mutex::new(Kept::default()));
        let shared = Arc::clone(&kept);
        thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut line: Vec<u8> = Vec::new();
                let mut long = false;
                let mut buf = [0u8; 16 << 10];
                loop {
                    let n = match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for &b in &buf[..n] {
                        if b == b'\n' {
                            let text = if long {
                                std::borrow::Cow::Owned(cut_line(sink.as_ref(), &line))
                            } else {
                                String::from_utf8_lossy(&line)
                            };
                            let text = text.trim_end();
                            match (lines, progress_text(text)) {
                                (Lines::Answer, _) => sink.emit(Event::Output {
                                    text: format!("{text}\n"),
                                }),
                                (Lines::Progress, Some(p)) => sink.emit(Event::Note {
                                    stage,
                                    step: None,
                                    message: p.to_string(),
                                }),
                                _ => sink.child_output(stage, text),
                            }
                            line.clear();
                            long = false;
                        } else if line.len() < LINE_LIMIT {
                            line.push(b);
                        } else {
                            long = true;
                        }
                    }
                    let mut kept = shared.lock().unwrap_or_else(|e| e.into_inner());
                    kept.bytes.extend(&buf[..n]);
                    let excess = kept.bytes.len().saturating_sub(LIMIT);
                    kept.bytes.drain(..excess);
                    kept.cut |= excess > 0;
                }
                if !line.is_empty() {
                    let text = if long {
                        cut_line(sink.as_ref(), &line)
                    } else {
                        String::from_utf8_lossy(&line).into_owned()
                    };
                    sink.child_output(stage, text.trim_end());
                }
            }
            let _ = tx.send(());
        });
        Capture { kept, done }
    }

    /// What was read, waiting for the end of the stream until `by` at the latest.
    pub fn finish(self, by: Instant) -> String {
        // If a process outside the child's group still holds the pipe, the reader
        // is left to it and the caller goes on with what was read by then.
        let _ = self
            .done
            .recv_timeout(by.saturating_duration_since(Instant::now()));
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()));
        let mut bytes = Vec::from(kept.bytes);
        if kept.cut {
            // The first line lost its start (it may be the end of a secret): it goes.
            let first = bytes
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |i| i + 1);
            bytes.drain(..first);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Redactor;

    /// Collects the lines it is given.
    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>, Redactor);

    impl Sink for Lines {
        fn emit(&self, _: Event) {}
        fn child_output(&self, _: Stage, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
        fn redactor(&self) -> &Redactor {
            &self.1
        }
    }

    const SECRET: &str = "SECRETVALUE123";

    fn capture(input: Vec<u8>) -> (Arc<Lines>, String) {
        let sink = Arc::new(Lines::default());
        sink.1.add(SECRET);
        let c = Capture::start(
            Stage::Deploy,
            Some(std::io::Cursor::new(input)),
            sink.clone(),
            super::Lines::Verbose,
        );
        let kept = c.finish(Instant::now() + std::time::Duration::from_secs(10));
        (sink, kept)
    }

    /// A line cut at the limit in the middle of a secret does not show its start.
    #[test]
    fn a_cut_line_ends_with_no_part_of_a_secret() {
        let mut input = vec![b'a'; LINE_LIMIT - 6];
        input.extend_from_slice(SECRET.as_bytes());
        input.extend_from_slice(b" more\nnext\n");
        let (sink, _) = capture(input);
        let lines = sink.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 2);
        assert!(
            !lines[0].contains("SECRET"),
            "{}",
            &lines[0][lines[0].len() - 40..]
        );
        assert!(lines[0].ends_with("[line cut]"));
        assert_eq!(lines[1], "next");
    }

    /// The kept tail whose start was dropped mid-secret drops that first line.
    #[test]
    fn a_kept_tail_does_not_start_with_the_end_of_a_secret() {
        let mut input = format!("{SECRET}\n").into_bytes();
        input.extend(std::iter::repeat_n(b'y', LIMIT - 9));
        let (_, kept) = capture(input);
        assert!(!kept.contains("VALUE123"), "{}", &kept[..20]);
    }
}
