//! The examples' logging: one line per delivery at info, cheap enough to keep on.

use std::io::IsTerminal;
use tracing_subscriber::field::MakeExt;

/// Logs to standard output, filtered by `RUST_LOG` (else `default_filter`).
///
/// Lines are gathered and written in batches by a thread of their own (one write
/// per batch, not per line) and never dropped (a full buffer makes the logger
/// wait): see `hookserver::LogWriter`. Keep the guard until `main` returns; it
/// writes what is left.
pub(crate) fn init(default_filter: &str) -> hookserver::LogFlushGuard {
    let (writer, flush_on_exit) = hookserver::LogWriter::stdout();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_ansi(std::io::stdout().is_terminal())
        .fmt_fields(plain_fields())
        .with_writer(writer)
        .init();
    flush_on_exit
}

/// The fields as the default formatter writes them (`name=value`, strings quoted
/// and escaped, the message bare), without its styling of each field name, which
/// costs a third of the line's formatting even with colours off.
fn plain_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> {
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        if field.name() == "message" {
            write!(writer, "{value:?}")
        } else {
            write!(writer, "{field}={value:?}")
        }
    })
    .delimited(" ")
}
