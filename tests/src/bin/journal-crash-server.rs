//! The server the journal's crash test starts and kills: the real pipeline with a
//! journal, and a handler that appends each GUID it processes to a file.
//! Placeholder until the crash test lands; see `tests/tests/journal_crash.rs`.

fn main() {}
