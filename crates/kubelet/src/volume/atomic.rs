//! The atomic writer of upstream's API-data volumes (configMap, secret,
//! downwardAPI, projected): the files live in a timestamped directory
//! `..<UTC time>.<random>`, the `..data` symlink points at the current one
//! and is swapped with rename(2), and every top-level name the user sees
//! is a symlink `name -> ..data/name`. A reader therefore sees either the
//! old or the new set of files, never a mix; a payload identical to what
//! is there writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The symlink to the current data directory.
pub const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";
const MAX_PATH: usize = 4096;
const MAX_NAME: usize = 255;

/// One file of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Its content.
    pub data: Vec<u8>,
    /// Its permission bits.
    pub mode: u32,
}

/// Relative path → file.
pub type Payload = BTreeMap<String, File>;

/// Upstream's path checks for a payload entry: relative, no `..`
/// element, not starting with `..` (reserved for the writer's own names),
/// bounded lengths.
pub fn validate_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("invalid path: must not be empty".into());
    }
    if p.len() > MAX_PATH {
        return Err(format!(
            "invalid path: must be less than or equal to {MAX_PATH} characters"
        ));
    }
    if Path::new(p).is_absolute() {
        return Err(format!("invalid path: must be relative path: {p}"));
    }
    if p.starts_with("..") {
        return Err(format!("invalid path: must not start with '..': {p}"));
    }
    for c in p.split('/') {
        if c == ".." {
            return Err(format!("invalid path: must not contain '..': {p}"));
        }
        if c.len() > MAX_NAME {
            return Err(format!(
                "invalid path: must not contain an element longer than {MAX_NAME} characters: {p}"
            ));
        }
    }
    Ok(())
}

fn io(what: &str, p: &Path) -> impl FnOnce(std::io::Error) -> String {
    let msg = format!("{what} {}", p.display());
    move |e| format!("{msg}: {e}")
}

/// The first path element of each payload entry: the user-visible names.
fn top_level(payload: &Payload) -> BTreeSet<String> {
    payload
        .keys()
        .filter_map(|p| {
            Path::new(p).components().find_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().to_string()),
                _ => None,
            })
        })
        .collect()
}

/// The files under `dir`, by path relative to it.
fn read_tree(dir: &Path) -> Option<Payload> {
    let mut out = Payload::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(dir.join(&rel)).ok()? {
            let e = e.ok()?;
            let r = rel.join(e.file_name());
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            if meta.is_dir() {
                stack.push(r);
            } else {
                out.insert(
                    r.to_string_lossy().to_string(),
                    File {
                        data: std::fs::read(e.path()).ok()?,
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
            }
        }
    }
    Some(out)
}

/// `..2006_01_02_15_04_05.<random>` in UTC, as upstream names them.
fn ts_dir_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    let mut rnd = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut rnd);
    format!(
        "..{y:04}_{m:02}_{d:02}_{:02}_{:02}_{:02}.{}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        u32::from_le_bytes(rnd)
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Make `target` hold exactly `payload`. Returns whether anything changed.
pub fn write(target: &Path, payload: &Payload) -> Result<bool, String> {
    for p in payload.keys() {
        validate_path(p)?;
    }
    std::fs::create_dir_all(target).map_err(io("creating", target))?;
    let data_link = target.join(DATA);
    let old = std::fs::read_link(&data_link).ok();
    let names = top_level(payload);
    let same = old
        .as_ref()
        .and_then(|o| read_tree(&target.join(o)))
        .is_some_and(|cur| &cur == payload);
    if !same {
        let ts = ts_dir_name();
        let dir = target.join(&ts);
        std::fs::create_dir(&dir).map_err(io("creating", &dir))?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        for (p, f) in payload {
            let path = dir.join(p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
            }
            std::fs::write(&path, &f.data).map_err(io("writing", &path))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))
                .map_err(io("setting the mode of", &path))?;
        }
        let tmp = target.join(DATA_TMP);
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&ts, &tmp).map_err(io("linking", &tmp))?;
        // The swap readers never see half done.
        std::fs::rename(&tmp, &data_link).map_err(io("renaming", &tmp))?;
    }
    for n in &names {
        let link = target.join(n);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(n), &link)
                .map_err(io("linking", &link))?;
        }
    }
    // Names no longer in the payload go (only the writer's own symlinks).
    for e in std::fs::read_dir(target)
        .map_err(io("reading", target))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("..") || names.contains(&name) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if !same {
        if let Some(o) = old {
            let _ = std::fs::remove_dir_all(target.join(o));
        }
    }
    Ok(!same)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(data: &str, mode: u32) -> File {
        File {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_updates_and_removes_keys() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("vol");
        let p1 = Payload::from([
            ("a".to_string(), f("1", 0o644)),
            ("sub/b".to_string(), f("2", 0o400)),
        ]);
        assert!(write(&dir, &p1).unwrap());
        let first = std::fs::read_link(dir.join(DATA)).unwrap();
        let name = first.to_string_lossy().to_string();
        assert!(name.starts_with("..20") && name.len() > 22, "{name}");
        assert_eq!(
            std::fs::read_link(dir.join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            std::fs::read_link(dir.join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "2");
        let mode = std::fs::metadata(dir.join("sub/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
        // The same payload again changes nothing.
        assert!(!write(&dir, &p1).unwrap());
        assert_eq!(std::fs::read_link(dir.join(DATA)).unwrap(), first);
        // An update: a changed key, a new one, one removed.
        let p2 = Payload::from([
            ("a".to_string(), f("one", 0o644)),
            ("c".to_string(), f("3", 0o644)),
        ]);
        assert!(write(&dir, &p2).unwrap());
        assert_ne!(std::fs::read_link(dir.join(DATA)).unwrap(), first);
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(dir.join("c")).unwrap(), "3");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        assert!(
            !dir.join(&first).exists(),
            "the old data directory is removed"
        );
        let left = entries(&dir);
        assert_eq!(left.len(), 4, "{left:?}"); // ..<ts>, ..data, a, c
                                               // A mode change alone is a change too.
        let p3 = Payload::from([
            ("a".to_string(), f("one", 0o600)),
            ("c".to_string(), f("3", 0o644)),
        ]);
        assert!(write(&dir, &p3).unwrap());
        // Empty payload: only the writer's names stay.
        assert!(write(&dir, &Payload::new()).unwrap());
        assert!(entries(&dir).iter().all(|e| e.starts_with("..")));
    }

    #[test]
    fn refuses_bad_paths() {
        for p in ["", "/abs", "../x", "a/../b", "..hidden"] {
            assert!(validate_path(p).is_err(), "{p}");
        }
        assert!(validate_path("a/b.c").is_ok());
        let t = tempfile::tempdir().unwrap();
        let bad = Payload::from([("../x".to_string(), f("1", 0o644))]);
        assert!(write(t.path(), &bad).is_err());
        assert!(!t.path().join("..data").exists());
    }

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
