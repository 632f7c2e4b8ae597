//! The library's settings. ADU's C API has no parameters besides three paths, so what a device
//! may want to change comes from a small config file next to the library and from environment
//! variables of the host process (they win, key by key), read again at every apply:
//!
//! | config key (`libadudiffapi.conf`) | environment variable | meaning | default |
//! |---|---|---|---|
//! | `known_item = PATH` (repeatable) | `DIFFGEN_KNOWN_ITEMS=PATH:PATH` | files or block devices that may hold an item of the delta; `rootfs`: the device of the running root filesystem (see [`crate::rootfs`]) | none |
//! | `memory_budget = SIZE` | `DIFFGEN_APPLY_MEMORY_BUDGET` | decoder and cookbook memory, e.g. `48M` | 48 MiB |
//! | `log = PATH` | `DIFFGEN_APPLY_LOG` | log file (appended), or folder for `diffgen-apply.log` | no log |
//! | `temp_dir = PATH` | `DIFFGEN_APPLY_TEMP_DIR` | folder for spill files | the target's folder |
//!
//! The config file is `libadudiffapi.conf` in the folder the library was loaded from, or the
//! file `DIFFGEN_APPLY_CONFIG` names (empty: none). Lines are `key = value`; `#` starts a
//! comment line. Paths in the file must be absolute. An unknown key or a bad value fails the
//! apply with code 50008, so a typo is seen rather than silently ignored (ADU then falls back
//! to the full download).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Name of the config file next to the library.
pub const CONFIG_NAME: &str = "libadudiffapi.conf";

/// Settings of one apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub known_items: Vec<PathBuf>,
    pub memory_budget: u64,
    pub log: Option<PathBuf>,
    pub temp_dir: Option<PathBuf>,
    /// Where they came from, for the log.
    pub origin: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            known_items: Vec::new(),
            memory_budget: delta::apply::DEFAULT_MEMORY_BUDGET,
            log: None,
            temp_dir: None,
            origin: Vec::new(),
        }
    }
}

/// The settings from the config file and this process's environment.
pub fn load() -> Result<Settings, String> {
    let env = |name: &str| std::env::var_os(name);
    let config = match env("DIFFGEN_APPLY_CONFIG") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(PathBuf::from(p)),
        None => library_dir().map(|d| d.join(CONFIG_NAME)),
    };
    let text = match &config {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) => Some((path.clone(), t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("config file {}: {e}", path.display())),
        },
        None => None,
    };
    resolve(text, env)
}

/// Settings from an optional config file (path, text) and an environment lookup.
pub fn resolve(
    config: Option<(PathBuf, String)>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Settings, String> {
    let mut s = Settings::default();
    if let Some((path, text)) = config {
        parse_config(&text, &mut s).map_err(|e| format!("config file {}: {e}", path.display()))?;
        s.origin.push(format!("config file {}", path.display()));
    }
    if let Some(v) = env("DIFFGEN_KNOWN_ITEMS") {
        s.known_items = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        s.origin.push("DIFFGEN_KNOWN_ITEMS".into());
    }
    if let Some(v) = env("DIFFGEN_APPLY_MEMORY_BUDGET") {
        let text = v.to_string_lossy();
        s.memory_budget = delta::size::parse_size(&text)
            .map_err(|e| format!("DIFFGEN_APPLY_MEMORY_BUDGET: {e}"))?;
        s.origin.push("DIFFGEN_APPLY_MEMORY_BUDGET".into());
    }
    for (name, slot) in [
        ("DIFFGEN_APPLY_LOG", &mut s.log),
        ("DIFFGEN_APPLY_TEMP_DIR", &mut s.temp_dir),
    ] {
        if let Some(v) = env(name) {
            *slot = (!v.is_empty()).then(|| PathBuf::from(v));
            s.origin.push(name.into());
        }
    }
    Ok(s)
}

fn parse_config(text: &str, s: &mut Settings) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| at(format!("{line:?} is not `key = value`")))?;
        let (key, value) = (key.trim(), value.trim());
        let path = || {
            let p = PathBuf::from(value);
            if p.is_absolute() {
                Ok(p)
            } else {
                Err(at(format!("{key}: {value:?} is not an absolute path")))
            }
        };
        match key {
            "known_item" if value == crate::rootfs::KEYWORD => s.known_items.push(value.into()),
            "known_item" => s.known_items.push(path()?),
            "memory_budget" => {
                s.memory_budget = delta::size::parse_size(value).map_err(&at)?;
            }
            "log" => s.log = Some(path()?),
            "temp_dir" => s.temp_dir = Some(path()?),
            _ => {
                return Err(at(format!(
                    "unknown key {key:?} (known: known_item, memory_budget, log, temp_dir)"
                )))
            }
        }
    }
    Ok(())
}

/// The folder this library was loaded from (dladdr of one of its functions).
pub fn library_dir() -> Option<PathBuf> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let here = library_dir as *const () as *const libc::c_void;
    // SAFETY: dladdr only writes into `info`; `here` is an address inside this library.
    let found = unsafe { libc::dladdr(here, info.as_mut_ptr()) };
    if found == 0 {
        return None;
    }
    // SAFETY: dladdr succeeded, so the struct is filled.
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated string owned by the dynamic loader.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let path = Path::new(std::ffi::OsStr::from_bytes(name.to_bytes()));
    path.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn config_then_environment() {
        let text = "# device settings\nknown_item = /dev/mmcblk0p2\nknown_item=/dev/mmcblk0p3\nknown_item = rootfs\n\nmemory_budget = 32M\nlog = /var/log/adu\n";
        let config = Some((
            PathBuf::from("/usr/lib/libadudiffapi.conf"),
            text.to_string(),
        ));
        let s = resolve(config.clone(), env_of(&[])).unwrap();
        assert_eq!(
            s.known_items,
            [
                PathBuf::from("/dev/mmcblk0p2"),
                PathBuf::from("/dev/mmcblk0p3"),
                PathBuf::from("rootfs")
            ]
        );
        assert_eq!(s.memory_budget, 32 << 20);
        assert_eq!(s.log, Some(PathBuf::from("/var/log/adu")));
        assert_eq!(s.temp_dir, None);

        let env = [
            ("DIFFGEN_KNOWN_ITEMS", "/a::/b"),
            ("DIFFGEN_APPLY_MEMORY_BUDGET", "64M"),
            ("DIFFGEN_APPLY_LOG", ""),
            ("DIFFGEN_APPLY_TEMP_DIR", "/data/tmp"),
        ];
        let s = resolve(config, env_of(&env)).unwrap();
        assert_eq!(s.known_items, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(s.memory_budget, 64 << 20);
        assert_eq!(s.log, None, "an empty DIFFGEN_APPLY_LOG turns the log off");
        assert_eq!(s.temp_dir, Some(PathBuf::from("/data/tmp")));
        assert_eq!(s.origin.len(), 5);
    }

    #[test]
    fn defaults_and_errors() {
        let s = resolve(None, env_of(&[])).unwrap();
        assert_eq!(s, Settings::default());
        for (text, needle) in [
            (
                "known_item = relative/path",
                "line 1: known_item: \"relative/path\" is not an absolute path",
            ),
            ("\nmemory = 1M", "line 2: unknown key \"memory\""),
            ("memory_budget = lots", "line 1: \"lots\" is not a size"),
            ("just words", "is not `key = value`"),
        ] {
            let e = resolve(Some(("/c".into(), text.into())), env_of(&[])).unwrap_err();
            assert!(e.contains(needle), "{e}");
            assert!(e.starts_with("config file /c: "), "{e}");
        }
        let e = resolve(None, env_of(&[("DIFFGEN_APPLY_MEMORY_BUDGET", "x")])).unwrap_err();
        assert!(e.contains("DIFFGEN_APPLY_MEMORY_BUDGET"), "{e}");
    }

    #[test]
    fn the_library_knows_where_it_was_loaded_from() {
        // In the unit-test binary, "the library" is the test executable itself.
        let dir = library_dir().expect("dladdr finds this code");
        assert!(dir.is_dir(), "{}", dir.display());
    }
}
