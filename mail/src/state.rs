//! Durable state files: versioned JSON, written atomically, one writer at a time, never silently
//! reset.
//!
//! A write goes to a temporary file in the same directory, is fsynced, renamed over the old file,
//! and the directory is fsynced, so a crash leaves either the old or the new file, never a mix.
//! Writers in this process serialise on a mutex; writers in other processes (a second replica on
//! the same volume, a debugging shell) on an advisory `flock` of a sibling `.lock` file.
//!
//! A file that does not parse is copied aside (`<name>.corrupt-<unix time>`), left in place, and
//! every later load reports it: the no-repeat guarantee depends on this file, so the domain
//! refuses mutations rather than start over from an empty one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading, writing or locking failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The file exists but is not valid; a copy was kept aside and the file left untouched.
    #[error("state file {path} is corrupt ({reason}); a copy was kept at {kept_at}; fix or move it to continue")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The copy kept aside.
        kept_at: PathBuf,
        /// The parse error.
        reason: String,
    },
    /// The file was written by a newer version of this program.
    #[error("state file {path} has schema {found}, newer than the supported {supported}")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build writes.
        supported: u32,
    },
}

/// A document stored in a state file.
pub trait StateDocument: Serialize + DeserializeOwned + Default {
    /// The schema version this build writes.
    const SCHEMA: u32;
    /// The version stored in this document.
    fn schema(&self) -> u32;
    /// Reads a file with no `schema` field: the seeds' plain JSON. `None` if it is not that either.
    fn from_legacy(value: serde_json::Value) -> Option<Self>;
}

/// One state file and the lock that serialises its writers.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    writer: tokio::sync::Mutex<()>,
}

impl StateFile {
    /// A state file at `path`; nothing is touched until it is loaded or updated.
    pub fn new(path: PathBuf) -> Self {
        Self { path, writer: tokio::sync::Mutex::new(()) }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the document; a missing file is an empty document.
    pub fn load<T: StateDocument>(&self) -> Result<T, StateError> {
        load_document(&self.path)
    }

    /// Loads, changes and writes back the document under both locks, returning what `change`
    /// returned once the new file is durable.
    pub async fn update<T: StateDocument, R>(&self, change: impl FnOnce(&mut T) -> R) -> Result<R, StateError> {
        let _in_process = self.writer.lock().await;
        let path = self.path.clone();
        // File locking and fsync block: keep them off the async workers.
        let (document, result) = tokio::task::block_in_place(|| -> Result<(T, R), StateError> {
            let _cross_process = lock_exclusive(&path)?;
            remove_orphaned_temporaries(&path);
            let mut document: T = load_document(&path)?;
            let result = change(&mut document);
            write_atomically(&path, &document)?;
            Ok((document, result))
        })?;
        drop(document);
        Ok(result)
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

fn lock_exclusive(path: &Path) -> Result<File, StateError> {
    let lock_path = sibling(path, ".lock");
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let file =
        OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_error(&lock_path))?;
    file.lock().map_err(io_error(&lock_path))?;
    Ok(file)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Temporary files of one state file share this prefix, so its writer can recognise its own.
fn temporary_prefix(path: &Path) -> String {
    format!(".{}.tmp-", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

/// Removes temporary files a killed writer of `path` left behind. Called under the file's
/// exclusive lock, so no live writer of this file owns one.
fn remove_orphaned_temporaries(path: &Path) {
    let Some(dir) = path.parent() else { return };
    let prefix = temporary_prefix(path);
    let Ok(listing) = fs::read_dir(dir) else { return };
    for entry in listing.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Loads and parses `path`, keeping a corrupt file aside.
pub fn load_document<T: StateDocument>(path: &Path) -> Result<T, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(error) => return Err(io_error(path)(error)),
    };
    match parse::<T>(&bytes) {
        Ok(document) if document.schema() > T::SCHEMA => {
            Err(StateError::NewerSchema { path: path.to_path_buf(), found: document.schema(), supported: T::SCHEMA })
        }
        Ok(document) => Ok(document),
        Err(reason) => Err(keep_aside(path, &bytes, reason)),
    }
}

fn parse<T: StateDocument>(bytes: &[u8]) -> Result<T, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if value.get("schema").is_some() {
        return serde_json::from_value(value).map_err(|e| e.to_string());
    }
    T::from_legacy(value).ok_or_else(|| "neither a versioned document nor the plain format".to_string())
}

fn keep_aside(path: &Path, bytes: &[u8], reason: String) -> StateError {
    let stamp = chrono::Utc::now().timestamp();
    let kept_at = sibling(path, &format!(".corrupt-{stamp}"));
    // Never overwrite an earlier copy: it may be the only record of what went wrong first.
    let copied = OpenOptions::new().write(true).create_new(true).open(&kept_at).and_then(|mut f| f.write_all(bytes));
    if let Err(error) = copied
        && error.kind() != std::io::ErrorKind::AlreadyExists
    {
        tracing::error!(path = %path.display(), %error, "could not keep a copy of a corrupt state file");
    }
    tracing::error!(path = %path.display(), kept_at = %kept_at.display(), %reason, "corrupt state file");
    StateError::Corrupt { path: path.to_path_buf(), kept_at, reason }
}

/// Writes `document` to `path` atomically and durably (temp file, fsync, rename, directory fsync).
pub fn write_atomically<T: Serialize>(path: &Path, document: &T) -> Result<(), StateError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut bytes = serde_json::to_vec_pretty(document).map_err(|e| io_error(path)(std::io::Error::other(e)))?;
    bytes.push(b'\n');
    // tempfile creates the file with mode 0600 and a random name in the same directory.
    let mut temporary =
        tempfile::Builder::new().prefix(&temporary_prefix(path)).tempfile_in(dir).map_err(io_error(dir))?;
    temporary.write_all(&bytes).map_err(io_error(path))?;
    temporary.as_file().sync_all().map_err(io_error(path))?;
    temporary.persist(path).map_err(|e| io_error(path)(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Doc {
        schema: u32,
        items: Vec<String>,
    }

    impl StateDocument for Doc {
        const SCHEMA: u32 = 1;
        fn schema(&self) -> u32 {
            self.schema
        }
        fn from_legacy(value: serde_json::Value) -> Option<Self> {
            let items = serde_json::from_value(value).ok()?;
            Some(Self { schema: Self::SCHEMA, items })
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn update_is_durable_and_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("data/doc.json"));
        assert_eq!(file.load::<Doc>().unwrap(), Doc::default());
        file.update(|doc: &mut Doc| {
            doc.schema = Doc::SCHEMA;
            doc.items.push("a".into())
        })
        .await
        .unwrap();
        let text = fs::read_to_string(file.path()).unwrap();
        assert!(text.contains("\"schema\": 1"), "{text}");
        assert_eq!(file.load::<Doc>().unwrap().items, ["a"]);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn plain_seed_json_loads_as_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        fs::write(&path, r#"["x","y"]"#).unwrap();
        assert_eq!(load_document::<Doc>(&path).unwrap().items, ["x", "y"]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn corrupt_file_is_kept_reported_and_never_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        fs::write(&path, b"{\"schema\": 1, \"items\": [\"a\"").unwrap();
        let file = StateFile::new(path.clone());
        let Err(StateError::Corrupt { kept_at, .. }) = file.load::<Doc>() else { panic!("corrupt file loaded") };
        assert_eq!(fs::read(&kept_at).unwrap(), fs::read(&path).unwrap());
        let update = file.update(|doc: &mut Doc| doc.items.push("b".into())).await;
        assert!(matches!(update, Err(StateError::Corrupt { .. })));
        assert_eq!(fs::read(&path).unwrap(), b"{\"schema\": 1, \"items\": [\"a\"", "the original stays untouched");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        fs::write(&path, r#"{"schema": 9, "items": []}"#).unwrap();
        assert!(matches!(load_document::<Doc>(&path), Err(StateError::NewerSchema { found: 9, .. })));
    }
}
