//! Which ledger folders a command works on: the ones given, or the opencode plugin's default
//! spool folder and the extra slots a second opencode at the same time takes (`-2` to `-8`).

use std::env;
use std::path::PathBuf;

/// The plugin's spool folder: `$OPENCODE_SHARE_SPOOL_DIR`, else
/// `$XDG_STATE_HOME/opencode-share/spool` (`~/.local/state` without XDG_STATE_HOME), as
/// bindings/opencode-plugin/src/options.ts chooses it.
pub fn plugin_default() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("OPENCODE_SHARE_SPOOL_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let state = match env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        Some(state) => PathBuf::from(state),
        None => {
            let home = env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .ok_or("neither XDG_STATE_HOME nor HOME is set: pass --spool-dir")?;
            PathBuf::from(home).join(".local").join("state")
        }
    };
    Ok(state.join("opencode-share").join("spool"))
}

/// The folders given, or the plugin's default one and those of its slots that exist.
pub fn chosen(given: Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
    if !given.is_empty() {
        return Ok(given);
    }
    let first = plugin_default()?;
    let slots = (2..=8).map(|n| {
        let mut name = first.clone().into_os_string();
        name.push(format!("-{n}"));
        PathBuf::from(name)
    });
    Ok(std::iter::once(first.clone())
        .chain(slots.filter(|s| s.is_dir()))
        .collect())
}
