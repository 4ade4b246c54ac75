//! Online compaction: copies a volume's live needles into a new volume and swaps it in
//! while reads and writes go on (protocol in the module docs of [`crate::volume`]).

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::file::{Volume, dat_name, idx_name, sync_dir, write_idx_file};
use super::format::{self, Entry, EntryKind, Layout, SUPER_LEN, Superblock, TRAILER_LEN};
use super::{Inner, blocking, class_index, copy_verified, now_ms, read_lock, write_lock};
use crate::api::StorageClass;
use crate::error::{BlobError, Result};

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionReport {
    pub volumes_compacted: u64,
    /// Live blobs copied into new volumes.
    pub blobs_copied: u64,
    /// Bytes of the compacted volumes before, and of their replacements after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub bytes_reclaimed: u64,
}

impl CompactionReport {
    pub(crate) fn add(&mut self, o: &CompactionReport) {
        self.volumes_compacted += o.volumes_compacted;
        self.blobs_copied += o.blobs_copied;
        self.bytes_before += o.bytes_before;
        self.bytes_after += o.bytes_after;
        self.bytes_reclaimed += o.bytes_reclaimed;
    }
}

/// (offset in the old volume, entry in the new one) per copied blob.
type Copies = Vec<(u64, Entry)>;

/// The new volume after the bulk copy, still under its temporary name.
struct Copied {
    tmp: PathBuf,
    file: File,
    sb: Superblock,
    /// In file order.
    entries: Copies,
    end: u64,
}

/// Copies the needles at `live` ((offset, id), by offset) of `v` into a new temporary
/// volume, verifying each completely (blocking).
fn copy_live(v: &Volume, live: &[(u64, u64)], new_id: u32, closed: &AtomicBool) -> Result<Copied> {
    let sb = Superblock { volume: new_id, replaces: v.id, nonce: rand::random() };
    let tmp = v.dir.join(format!("{}.tmp", dat_name(new_id)));
    let file = Volume::create_file(&tmp, &sb, false)
        .map_err(|e| BlobError::io(format!("creating {}", tmp.display()), e))?;
    let mut entries = Vec::with_capacity(live.len());
    let mut pos = SUPER_LEN;
    let copied = (|| {
        let werr = |e| BlobError::io(format!("writing {}", tmp.display()), e);
        for &(off, id) in live {
            if closed.load(Ordering::Acquire) {
                return Err(BlobError::Closed);
            }
            let (h, _) = v.read_header(id, off)?;
            let l = h.layout();
            let front = v.read_at(l.data_off(), off)?;
            let trailer = v.read_at(TRAILER_LEN, off + l.trailer_off())?;
            if !format::trailer_matches(&front, &trailer) {
                return Err(v.integrity(off, "needle trailer does not match"));
            }
            file.write_all_at(&front, pos).map_err(werr)?;
            let table = &front[l.table_off() as usize..];
            copy_verified(v, off + l.data_off(), &file, &tmp, pos + l.data_off(), l.size, table)?;
            file.write_all_at(&trailer, pos + l.trailer_off()).map_err(werr)?;
            let entry = Entry {
                kind: EntryKind::Data,
                id,
                offset: pos,
                size: l.size,
                seq: h.seq,
                ct_len: h.content_type.len() as u16,
            };
            entries.push((off, entry));
            pos += l.needle_len();
        }
        Ok(())
    })();
    match copied {
        Ok(()) => Ok(Copied { tmp, file, sb, entries, end: pos }),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Tombstones the copies of blobs that died during the copy, syncs, writes the `.idx` and
/// renames the volume into place: the commit point (blocking).
fn finish_copy(
    c: Copied,
    dead: &[u64],
    seq: &AtomicU64,
    dir: &Path,
    class: StorageClass,
    sync: bool,
) -> Result<Volume> {
    let new_id = c.sb.volume;
    let final_path = dir.join(dat_name(new_id));
    let werr = |what: &str, e| BlobError::io(format!("{what} {}", c.tmp.display()), e);
    let mut entries: Vec<Entry> = c.entries.iter().map(|(_, e)| *e).collect();
    let mut pos = c.end;
    let prepared = (|| {
        for &id in dead {
            let s = seq.fetch_add(1, Ordering::Relaxed);
            let bytes = format::encode_tombstone(id, s, now_ms());
            c.file.write_all_at(&bytes, pos).map_err(|e| werr("writing", e))?;
            entries.push(Entry {
                kind: EntryKind::Tombstone,
                id,
                offset: pos,
                size: 0,
                seq: s,
                ct_len: 0,
            });
            pos += bytes.len() as u64;
        }
        if sync {
            c.file.sync_all().map_err(|e| werr("syncing", e))?;
        }
        // The `.idx` first: should the rename below not happen, an `.idx` without its
        // `.dat` is removed on open.
        write_idx_file(&dir.join(idx_name(new_id)), new_id, c.sb.nonce, &entries, true, sync)
            .map_err(|e| werr("writing the index of", e))
    })();
    let idx = match prepared {
        Ok(idx) => idx,
        Err(e) => {
            let _ = fs::remove_file(&c.tmp);
            let _ = fs::remove_file(dir.join(idx_name(new_id)));
            return Err(e);
        }
    };
    fs::rename(&c.tmp, &final_path).map_err(|e| werr("renaming", e))?;
    if sync {
        sync_dir(dir).map_err(|e| BlobError::io(format!("syncing {}", dir.display()), e))?;
    }
    let v = Volume::new(dir, class, c.sb, c.file, pos, Some(idx));
    v.seal();
    Ok(v)
}

impl Inner {
    /// Compacts volume `id` (see the module docs).
    pub(crate) async fn compact_volume(self: &Arc<Self>, id: u32) -> Result<CompactionReport> {
        let _one_at_a_time = self.compaction.lock().await;
        self.check_writable()?;
        let _gate = self.gate.read().await;
        self.check_writable()?;
        let vol = read_lock(&self.state)
            .volumes
            .get(&id)
            .cloned()
            .ok_or_else(|| BlobError::InvalidArgument(format!("no volume {id}")))?;
        {
            let mut active = self.active[class_index(vol.class)].lock().await;
            if active.as_ref().is_some_and(|a| a.id == id) {
                *active = None;
            }
            vol.seal();
        }
        // Sealed, so no new puts arrive; wait for those still streaming into it.
        loop {
            let idle = vol.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if vol.inflight() == 0 {
                break;
            }
            idle.await;
        }
        let before = vol.end();
        let live = read_lock(&self.state).index.in_volume(id);
        let copied = if live.is_empty() {
            None
        } else {
            let new_id = self.next_volume.fetch_add(1, Ordering::Relaxed);
            let (me, v) = (Arc::clone(self), Arc::clone(&vol));
            Some(blocking("compacting", move || copy_live(&v, &live, new_id, &me.closed)).await?)
        };

        let hold = super::lock(&self.hold).take();
        if let Some((reached, resume)) = hold {
            reached.notify_one();
            resume.notified().await;
        }
        // Deletes and moves out of this volume wait from here until the swap is done.
        let _mutations = vol.mutation.write().await;
        let mut report = CompactionReport {
            volumes_compacted: 1,
            bytes_before: before,
            ..CompactionReport::default()
        };
        let replacement = match copied {
            None => None,
            Some(c) => {
                let (dead, still): (Copies, Copies) = {
                    let st = read_lock(&self.state);
                    c.entries.iter().partition(|(old, e)| st.index.get(e.id) != Some((id, *old)))
                };
                let dead: Vec<u64> = dead.into_iter().map(|(_, e)| e.id).collect();
                let (me, dir, class, sync) =
                    (Arc::clone(self), vol.dir.clone(), vol.class, self.config.sync);
                let r = blocking("committing a compaction", move || {
                    finish_copy(c, &dead, &me.seq, &dir, class, sync)
                })
                .await;
                // After the rename the files on disk already say "the old volume is gone":
                // a failure from here on must stop writes, or a later tombstone written to
                // the old volume would be lost on reopen.
                let nv = Arc::new(self.poison_on_io(r)?);
                report.blobs_copied = still.len() as u64;
                report.bytes_after = nv.end();
                Some((nv, still))
            }
        };
        {
            let mut st = write_lock(&self.state);
            if let Some((nv, still)) = &replacement {
                for (old, e) in still {
                    if st.index.get(e.id) == Some((id, *old)) {
                        st.index.insert(e.id, nv.id, e.offset)?;
                        nv.add_live(Layout::new(usize::from(e.ct_len), e.size));
                    }
                }
                st.volumes.insert(nv.id, Arc::clone(nv));
            }
            st.volumes.remove(&id);
        }
        vol.retired.store(true, Ordering::Release);
        let (v, sync) = (Arc::clone(&vol), self.config.sync);
        let removed = blocking("removing a compacted volume", move || {
            for p in [&v.path, &v.idx_path] {
                fs::remove_file(p)
                    .map_err(|e| BlobError::io(format!("removing {}", p.display()), e))?;
            }
            if sync {
                sync_dir(&v.dir)
                    .map_err(|e| BlobError::io(format!("syncing {}", v.dir.display()), e))?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = removed {
            // Harmless: with a replacement the next open deletes it; without one it holds
            // only dead needles and their tombstones.
            tracing::warn!(volume = id, error = %e, "could not remove a compacted volume");
        }
        report.bytes_reclaimed = report.bytes_before.saturating_sub(report.bytes_after);
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_reclaimed.fetch_add(report.bytes_reclaimed, Ordering::Relaxed);
        tracing::info!(
            volume = id,
            replacement = replacement.as_ref().map(|(v, _)| v.id),
            reclaimed = report.bytes_reclaimed,
            "compacted a volume"
        );
        Ok(report)
    }
}
