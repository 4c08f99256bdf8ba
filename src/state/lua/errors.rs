//! How a script's error reads: Redis's wording, located at the script's line.

use mlua::{Lua, Value};

use super::PRELUDE_SOURCE;
use crate::reply::Reply;

/// Redis's reply for an error that ended a script: the error table's message, with
/// `script: <sha>, on <source>:<line>.` when the handler located it.
pub(super) fn script_error(value: &Value, sha: &str) -> Reply {
    match value {
        Value::Table(error) => {
            let message: Option<mlua::LuaString> = error.raw_get("err").ok();
            let message =
                message.map_or_else(|| "ERR unknown error".to_string(), |m| m.to_string_lossy());
            let source: Option<mlua::LuaString> = error.raw_get("source").ok();
            let line: Option<i64> = error.raw_get("line").ok();
            match (source, line) {
                (Some(source), Some(line)) => Reply::Error(format!(
                    "{message} script: {sha}, on {}:{line}.",
                    source.to_string_lossy()
                )),
                _ => Reply::Error(message),
            }
        }
        Value::String(text) => Reply::Error(format!(
            "ERR Error running script {sha}, {}",
            text.to_string_lossy()
        )),
        _ => Reply::Error(format!("ERR Error running script {sha}, execution failure")),
    }
}

/// The source and line of the innermost frame that is script code (neither C nor the
/// prelude), for the error handler.
pub(super) fn error_location(lua: &Lua) -> (Option<String>, Option<i64>) {
    for level in 1.. {
        let frame = lua.inspect_stack(level, |debug| {
            let source = debug.source();
            let script = source.what != "C"
                && source
                    .source
                    .as_deref()
                    .is_some_and(|s| s != PRELUDE_SOURCE);
            script.then(|| {
                (
                    source.source.as_deref().map(str::to_string),
                    debug.current_line().map(|l| l as i64),
                )
            })
        });
        match frame {
            None => break,
            Some(Some(found)) => return found,
            Some(None) => {}
        }
    }
    (None, None)
}

/// Lua's own message for a compile or runtime error, without mlua's decoration.
pub(super) fn lua_error_text(error: &mlua::Error) -> String {
    match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::MemoryError(_) => "not enough memory".to_string(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}
