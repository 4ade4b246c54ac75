//! The hardened process runner: every ffmpeg/ffprobe child is started here, never through
//! a shell, with rlimits (via `prlimit`), a wall-clock timeout, a scrubbed environment and
//! bounded output capture. Also the per-job working directory.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::config::MediaConfig;
use crate::error::{MediaError, Result};

/// Which binary to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Ffmpeg,
    Ffprobe,
}

impl Tool {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
        }
    }
}

/// What a successful run produced.
#[derive(Debug)]
pub(crate) struct ToolOutput {
    pub stdout: Vec<u8>,
    #[allow(dead_code)]
    pub stderr: String,
}

static PRLIMIT_WARNED: AtomicBool = AtomicBool::new(false);

/// `SIGXCPU`: the kernel's signal for an exceeded RLIMIT_CPU soft limit.
const SIGXCPU: i32 = 24;
const SIGKILL: i32 = 9;

/// coreutils' `nice`, to lower a tool's scheduling priority (the workspace forbids the
/// `unsafe` a direct `setpriority` would need).
fn nice_available() -> Option<&'static Path> {
    ["/usr/bin/nice", "/bin/nice"].into_iter().map(Path::new).find(|p| p.is_file())
}

/// Whether the configured `prlimit` binary exists (so caps beyond wall-clock apply).
pub(crate) fn prlimit_available(cfg: &MediaConfig) -> Option<&Path> {
    cfg.prlimit_path.as_deref().filter(|p| p.is_file())
}

fn build_command(cfg: &MediaConfig, tool: Tool, args: &[OsString], cwd: &Path) -> Result<Command> {
    let bin = match tool {
        Tool::Ffmpeg => &cfg.ffmpeg_path,
        Tool::Ffprobe => &cfg.ffprobe_path,
    };
    // The program and its arguments before the tool's own: `nice`, then `prlimit`.
    let mut chain: Vec<OsString> = Vec::new();
    if cfg.niceness > 0 {
        match nice_available() {
            Some(nice) => chain.extend([
                nice.as_os_str().to_owned(),
                "-n".into(),
                cfg.niceness.min(19).to_string().into(),
            ]),
            None => tracing::warn!("nice not available: running at normal priority"),
        }
    }
    match prlimit_available(cfg) {
        Some(prlimit) => {
            // Soft CPU limit raises SIGXCPU (a recognisable exit); the hard one, a few
            // seconds later, is the kernel's SIGKILL backstop.
            chain.extend([
                prlimit.as_os_str().to_owned(),
                format!("--cpu={}:{}", cfg.max_cpu_secs, cfg.max_cpu_secs.saturating_add(5)).into(),
                format!("--as={}", cfg.max_address_space_bytes).into(),
                "--".into(),
            ]);
        }
        None => {
            if cfg.require_prlimit {
                return Err(MediaError::ToolMissing {
                    tool: "prlimit",
                    path: cfg.prlimit_path.clone().unwrap_or_default(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            if !PRLIMIT_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "prlimit not available: media tools run without CPU/memory rlimits \
                     (wall-clock timeout still applies)"
                );
            }
        }
    }
    chain.push(bin.as_os_str().to_owned());
    let mut cmd = Command::new(&chain[0]);
    cmd.args(&chain[1..]);
    match tool {
        // -nostdin: ffmpeg must never read the terminal or a stdin it was not given.
        Tool::Ffmpeg => cmd.args(["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"]),
        Tool::Ffprobe => cmd.args(["-hide_banner", "-loglevel", "error"]),
    };
    cmd.args(args)
        .current_dir(cwd)
        // A scrubbed environment: no FFREPORT, proxies or fontconfig surprises from the host.
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    Ok(cmd)
}

/// Reads all of `r`, keeping at most `limit` bytes; reports whether more arrived.
/// Keeps draining past the limit so the child never blocks on a full pipe.
async fn read_capped(
    mut r: impl AsyncRead + Unpin,
    limit: usize,
    keep_tail: bool,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > limit {
                    overflow = true;
                    if keep_tail {
                        let cut = kept.len() - limit;
                        kept.drain(..cut);
                    } else {
                        kept.truncate(limit);
                    }
                }
            }
        }
    }
    (kept, overflow)
}

/// Runs `tool` with `args` (no shell) in `cwd`, under the configured caps and `timeout`.
pub(crate) async fn run(
    cfg: &MediaConfig,
    tool: Tool,
    args: &[OsString],
    cwd: &Path,
    timeout: Duration,
) -> Result<ToolOutput> {
    let mut cmd = build_command(cfg, tool, args, cwd)?;
    tracing::debug!(tool = tool.name(), ?args, "spawning media tool");
    let mut child = cmd.spawn().map_err(|source| MediaError::ToolMissing {
        tool: tool.name(),
        path: match tool {
            Tool::Ffmpeg => cfg.ffmpeg_path.clone(),
            Tool::Ffprobe => cfg.ffprobe_path.clone(),
        },
        source,
    })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (out_limit, err_limit) = (cfg.max_stdout_bytes, cfg.max_stderr_bytes);
    let work = async {
        let out = async {
            match stdout {
                Some(s) => read_capped(s, out_limit, false).await,
                None => (Vec::new(), false),
            }
        };
        let err = async {
            match stderr {
                Some(s) => read_capped(s, err_limit, true).await,
                None => (Vec::new(), false),
            }
        };
        let ((out, out_overflow), (err, _), status) = tokio::join!(out, err, child.wait());
        (out, out_overflow, err, status)
    };
    let (stdout, overflow, stderr, status) = match tokio::time::timeout(timeout, work).await {
        Ok(v) => v,
        Err(_) => {
            // kill_on_drop would do this too, but reaping here means no zombie lingers.
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(MediaError::Timeout { tool: tool.name(), limit: timeout });
        }
    };
    let status = status.map_err(|e| MediaError::io(format!("waiting for {}", tool.name()), e))?;
    let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
    if overflow {
        return Err(MediaError::OutputTooLarge { tool: tool.name(), limit: out_limit });
    }
    if status.success() {
        return Ok(ToolOutput { stdout, stderr });
    }
    if let Some(sig) = status.signal()
        && (sig == SIGXCPU || sig == SIGKILL)
    {
        return Err(MediaError::ResourceLimit {
            tool: tool.name(),
            what: format!("CPU time limit of {} s (signal {sig})", cfg.max_cpu_secs),
            stderr,
        });
    }
    // ffmpeg traps SIGXCPU and exits 255 ("received signal"); we never send it other
    // catchable signals (timeouts use SIGKILL), so under prlimit that exit means the CPU cap.
    if tool == Tool::Ffmpeg && status.code() == Some(255) && prlimit_available(cfg).is_some() {
        return Err(MediaError::ResourceLimit {
            tool: tool.name(),
            what: format!("CPU time limit of {} s (ffmpeg stopped on SIGXCPU)", cfg.max_cpu_secs),
            stderr,
        });
    }
    // Signatures of an exhausted RLIMIT_AS: the loader cannot map a library, or an
    // allocation inside ffmpeg/x264/x265 fails.
    const OOM_SIGNS: &[&str] =
        &["Cannot allocate memory", "bad_alloc", "failed to map segment", "malloc of size"];
    if OOM_SIGNS.iter().any(|s| stderr.contains(s)) {
        return Err(MediaError::ResourceLimit {
            tool: tool.name(),
            what: format!("address-space limit of {} bytes", cfg.max_address_space_bytes),
            stderr,
        });
    }
    Err(MediaError::ToolFailed { tool: tool.name(), status: status.to_string(), stderr })
}

/// `file:` URL for a path, so a name containing `:` is never read as another protocol.
pub(crate) fn file_url(path: &Path) -> OsString {
    let mut s = OsString::from("file:");
    s.push(path.as_os_str());
    s
}

/// Input options every run uses: file/pipe protocols only, the demuxer pinned to what
/// probe found (never auto-detected), bounded decoder threads.
pub(crate) fn input_args(format: &str, path: &Path, threads: u32) -> Vec<OsString> {
    let mut v: Vec<OsString> = ["-protocol_whitelist", "file,pipe", "-f", format, "-threads"]
        .iter()
        .map(OsString::from)
        .collect();
    v.push(threads.to_string().into());
    v.push("-i".into());
    v.push(file_url(path));
    v
}

/// Builds an argument vector from string-ish pieces.
pub(crate) fn args<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    items.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

/// A per-job private working directory (mode 0700, removed on drop). Inputs are linked or
/// copied in and every output is written inside it.
#[derive(Debug)]
pub struct JobDir {
    dir: tempfile::TempDir,
}

impl JobDir {
    /// Creates a fresh job directory under `cfg.work_root` (or the system temp dir).
    pub fn new(cfg: &MediaConfig) -> Result<JobDir> {
        let mut b = tempfile::Builder::new();
        b.prefix("qt-media-");
        let dir = match &cfg.work_root {
            Some(root) => {
                std::fs::create_dir_all(root)
                    .map_err(|e| MediaError::io(format!("creating {}", root.display()), e))?;
                b.tempdir_in(root)
            }
            None => b.tempdir(),
        }
        .map_err(|e| MediaError::io("creating job directory", e))?;
        Ok(JobDir { dir })
    }

    /// Removes job directories left under `root` by a process that died (kill -9, power
    /// loss) before it could clean up; call it once at start-up, before any job runs.
    /// Only this crate's `qt-media-*` directories are touched. Returns how many went.
    pub fn remove_stale(root: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(root) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let ours = name.to_str().is_some_and(|n| n.starts_with("qt-media-"));
            if ours && entry.file_type().is_ok_and(|t| t.is_dir()) {
                match std::fs::remove_dir_all(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(dir = %entry.path().display(), error = %e, "cannot remove a stale job dir")
                    }
                }
            }
        }
        removed
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the directory on disk (the caller becomes responsible for removing it).
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }

    /// Returns `src` if it already lives in this job dir; otherwise hard-links (or, across
    /// filesystems, copies) it in as `input/<name>` and returns the new path.
    pub fn import(&self, src: &Path) -> Result<PathBuf> {
        let root = self.canonical_root()?;
        let canon = src
            .canonicalize()
            .map_err(|e| MediaError::io(format!("reading {}", src.display()), e))?;
        if canon.starts_with(&root) {
            return Ok(canon);
        }
        let inputs = root.join("input");
        std::fs::create_dir_all(&inputs)
            .map_err(|e| MediaError::io("creating job input directory", e))?;
        // Our own name, not the uploader's: nothing in it can look like an option or URL.
        let ext: String = canon
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("bin")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        // One slot per source path, so several inputs can share a job dir.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&canon, &mut h);
        let key = std::hash::Hasher::finish(&h);
        let ext = if ext.is_empty() { "bin".to_owned() } else { ext };
        let dst = inputs.join(format!("source-{key:016x}.{ext}"));
        if let (Ok(a), Ok(b)) = (std::fs::metadata(&canon), std::fs::metadata(&dst)) {
            // A hard link shares the mtime; a copy is newer than the source it was made from.
            let fresh = match (a.modified(), b.modified()) {
                (Ok(src), Ok(dst)) => dst >= src,
                _ => false,
            };
            if a.len() == b.len() && fresh {
                return Ok(dst);
            }
            // The source changed since it was imported: import it again.
            std::fs::remove_file(&dst)
                .map_err(|e| MediaError::io(format!("replacing {}", dst.display()), e))?;
        }
        if std::fs::hard_link(&canon, &dst).is_err() {
            std::fs::copy(&canon, &dst).map_err(|e| {
                MediaError::io(format!("copying {} into job dir", src.display()), e)
            })?;
        }
        Ok(dst)
    }

    /// A fresh subdirectory for outputs (`out/<name>`), emptied if it existed.
    pub fn output_dir(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty()
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(MediaError::Invalid(format!("bad output directory name {name:?}")));
        }
        let dir = self.canonical_root()?.join("out").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| MediaError::io(format!("clearing {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| MediaError::io(format!("creating {}", dir.display()), e))?;
        Ok(dir)
    }

    fn canonical_root(&self) -> Result<PathBuf> {
        self.path().canonicalize().map_err(|e| MediaError::io("resolving job directory", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn niceness_wraps_the_tool_in_nice() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let program = |niceness: u8| {
            let cfg = MediaConfig { niceness, ..MediaConfig::default() };
            let cmd = build_command(&cfg, Tool::Ffprobe, &[], dir.path())
                .unwrap_or_else(|e| panic!("{e}"));
            let std = cmd.as_std();
            let args: Vec<String> =
                std.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
            (std.get_program().to_string_lossy().into_owned(), args)
        };
        let (plain, _) = program(0);
        assert!(!plain.ends_with("nice"), "{plain}");
        if nice_available().is_some() {
            let (nice, args) = program(25);
            assert!(nice.ends_with("/nice"), "{nice}");
            assert_eq!(&args[..2], ["-n", "19"], "clamped to 19: {args:?}");
            assert!(args.iter().any(|a| a.ends_with("ffprobe")), "{args:?}");
        }
    }

    #[test]
    fn remove_stale_takes_only_job_dirs() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cfg = MediaConfig { work_root: Some(root.path().to_owned()), ..MediaConfig::default() };
        let left = JobDir::new(&cfg).unwrap_or_else(|e| panic!("{e}")).keep();
        std::fs::write(left.join("half-written.m4s"), b"x").unwrap_or_else(|e| panic!("{e}"));
        let other = root.path().join("not-ours");
        std::fs::create_dir(&other).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(JobDir::remove_stale(root.path()), 1);
        assert!(!left.exists());
        assert!(other.exists(), "foreign directories are left alone");
        assert_eq!(JobDir::remove_stale(&root.path().join("missing")), 0);
    }
}
