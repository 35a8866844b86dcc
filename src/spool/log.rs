//! The log file: reading it back up to the last whole record, appending batches of frames, and
//! the atomic rewrite that compaction uses (new file, fsync, rename over, fsync the folder).

use std::fs::File;
use std::io::{BufReader, ErrorKind as IoKind, Read, Write};
use std::path::{Path, PathBuf};

use super::live::Live;
use super::record::{self, FRAME_LEN, HEADER_LEN, MAGIC, MAX_PAYLOAD, Record, VERSION, VERSION_1};
use super::{Error, ErrorKind, Result, folder};

/// The log's name in the spool folder.
pub const LOG_NAME: &str = "spool.log";
/// What a compaction writes before renaming it over the log.
pub const TMP_NAME: &str = "spool.log.tmp";
/// Encoded bytes gathered before one write: bounds the memory a large batch takes.
const WRITE_CHUNK: usize = 1 << 20;

/// What reading a log found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Whole records read.
    pub records: u64,
    /// Bytes up to the end of the last whole record (0 when even the header is torn).
    pub valid_len: u64,
    /// Bytes after that: a torn last write, damage, or garbage.
    pub skipped: u64,
    /// The log's format version (this code's for an empty or torn-header log).
    pub version: u32,
}

/// Reads a log of `len` bytes from `r` into `live`, stopping at the first frame that is short,
/// longer than [`MAX_PAYLOAD`] or than what is left, fails its checksum, or does not decode. A
/// file that is not a spool, or of a version other than 1 and 2, is an error (`NotASpool`) and
/// `live` is left as it was; a torn header (a prefix of ours) reads as an empty log.
pub fn scan(r: impl Read, len: u64, live: &mut Live, shown: &Path) -> Result<Scan> {
    let mut r = BufReader::with_capacity(64 << 10, r);
    let read_err = |e: std::io::Error| Error::io(format_args!("spool log {}", shown.display()), &e);
    let mut header = [0u8; HEADER_LEN as usize];
    let have = read_up_to(&mut r, &mut header).map_err(read_err)?;
    let magic_seen = have.min(MAGIC.len());
    if header[..magic_seen] != MAGIC[..magic_seen] {
        return Err(Error::new(
            ErrorKind::NotASpool,
            format!(
                "{} is not an opencode-share spool (its first bytes differ)",
                shown.display()
            ),
        ));
    }
    if (have as u64) < HEADER_LEN {
        return Ok(Scan {
            records: 0,
            valid_len: 0,
            skipped: have as u64,
            version: VERSION,
        });
    }
    let version = u32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
    if version != VERSION && version != VERSION_1 {
        return Err(Error::new(
            ErrorKind::NotASpool,
            format!(
                "{} is a spool of format version {version}; this library reads versions \
                 {VERSION_1} and {VERSION}",
                shown.display()
            ),
        ));
    }
    let mut scan = Scan {
        records: 0,
        valid_len: HEADER_LEN,
        skipped: 0,
        version,
    };
    let mut payload = Vec::new();
    loop {
        let left = len.saturating_sub(scan.valid_len);
        if left == 0 || !read_frame(&mut r, left, &mut payload).map_err(read_err)? {
            break;
        }
        let Ok(rec) = Record::decode_version(&payload, version) else {
            break;
        };
        live.apply(&rec);
        scan.records += 1;
        scan.valid_len += (FRAME_LEN + payload.len()) as u64;
    }
    scan.skipped = len.saturating_sub(scan.valid_len);
    Ok(scan)
}

/// Reads one frame's payload into `payload` if a whole, intact frame is within the `left`
/// bytes; false at damage. The length is checked before anything is allocated for it.
fn read_frame(r: &mut impl Read, left: u64, payload: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut frame = [0u8; FRAME_LEN];
    if left < FRAME_LEN as u64 || read_up_to(r, &mut frame)? < FRAME_LEN {
        return Ok(false);
    }
    let len = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(frame[4..].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_PAYLOAD || len as u64 > left - FRAME_LEN as u64 {
        return Ok(false);
    }
    payload.resize(len, 0);
    if read_up_to(r, payload)? < len {
        return Ok(false);
    }
    Ok(record::checksum(&frame[..4], payload) == crc)
}

/// Fills `buf` as far as the reader goes; the count read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == IoKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The open log: appends go to its end, `len` is where the last whole record ends.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    file: File,
    len: u64,
    /// A failed append could not be cut back: the file may end in a partial frame until the
    /// next append cuts it to `len`.
    torn: bool,
}

impl Log {
    /// Opens (or creates) the log in `dir`, whose lock the caller holds, and reads it into
    /// `live`. A damaged tail is cut off, so that later appends follow the last whole record;
    /// a compaction's leftover temporary file is removed.
    pub fn open(dir: &Path, live: &mut Live) -> Result<(Log, Scan)> {
        let path = dir.join(LOG_NAME);
        let shown = path.display();
        let tmp = dir.join(TMP_NAME);
        folder::remove_if_present(&tmp)
            .map_err(|e| Error::io(format_args!("spool log {}: removing {TMP_NAME}", shown), &e))?;
        let file = match folder::open_file(&path, false) {
            Ok(file) => file,
            Err(e) if e.kind() == IoKind::NotFound => {
                let log = Log::create(dir, &[])?;
                return Ok((
                    log,
                    Scan {
                        records: 0,
                        valid_len: HEADER_LEN,
                        skipped: 0,
                        version: VERSION,
                    },
                ));
            }
            Err(e) => return Err(Error::io(format_args!("spool log {shown}"), &e)),
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io(format_args!("spool log {shown}"), &e))?
            .len();
        let scan = scan(&file, len, live, &path)?;
        if scan.valid_len < HEADER_LEN {
            // torn while the header was written: nothing in it to keep
            drop(file);
            return Ok((Log::create(dir, &[])?, scan));
        }
        if scan.version != VERSION {
            // an older layout: rewritten (atomically) as this one before anything is appended
            drop(file);
            return Ok((Log::create(dir, &live.records())?, scan));
        }
        let mut log = Log {
            dir: dir.to_path_buf(),
            file,
            len: scan.valid_len,
            torn: scan.skipped > 0,
        };
        if log.torn {
            log.cut().map_err(|e| {
                Error::io(
                    format_args!("spool log {shown}: cutting its damaged tail"),
                    &e,
                )
            })?;
            log.file
                .sync_data()
                .map_err(|e| Error::io(format_args!("spool log {shown}: syncing"), &e))?;
        }
        Ok((log, scan))
    }

    /// Where the last whole record ends: the file's length when no write is torn.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Writes `records` at the end: all of them, or (on failure) none, the file cut back.
    /// Their sizes are checked first (`TooLarge`, nothing written). Returns the bytes written.
    pub fn append(&mut self, records: &[Record]) -> Result<u64> {
        check_sizes(records)?;
        let shown = self.dir.join(LOG_NAME);
        if self.torn {
            self.cut().map_err(|e| {
                Error::io(
                    format_args!("spool log {}: cutting a torn write", shown.display()),
                    &e,
                )
            })?;
        }
        let start = self.len;
        match write_frames(&mut self.file, records) {
            Ok(n) => {
                self.len += n;
                Ok(n)
            }
            Err(e) => {
                self.torn = true;
                let _ = self.cut(); // if this fails too, the next append tries again
                self.len = start;
                Err(Error::io(
                    format_args!("spool log {}: appending", shown.display()),
                    &e,
                ))
            }
        }
    }

    /// Cuts the file to `len` (after a torn or failed write).
    fn cut(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.len)?;
        self.torn = false;
        Ok(())
    }

    /// Makes every record appended so far durable (fdatasync).
    pub fn sync_data(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| {
            Error::io(
                format_args!("spool log {}: syncing", self.dir.join(LOG_NAME).display()),
                &e,
            )
        })
    }

    /// Replaces the log with one holding exactly `records`, atomically: a crash leaves either
    /// the old log or the new one whole.
    pub fn rewrite(&mut self, records: &[Record]) -> Result<()> {
        *self = Log::create(&self.dir, records)?;
        Ok(())
    }

    /// Writes a new log of `records` beside the old (or no) one, syncs it, renames it over and
    /// syncs the folder.
    fn create(dir: &Path, records: &[Record]) -> Result<Log> {
        check_sizes(records)?;
        let tmp = dir.join(TMP_NAME);
        let shown = tmp.display();
        let fail = |what: &str, e: std::io::Error| {
            let _ = folder::remove_if_present(&tmp);
            Error::io(format_args!("spool log {shown}: {what}"), &e)
        };
        folder::remove_if_present(&tmp).map_err(|e| fail("removing a leftover", e))?;
        let mut file = folder::create_new_file(&tmp).map_err(|e| fail("creating", e))?;
        file.write_all(&record::header())
            .map_err(|e| fail("writing", e))?;
        let n = write_frames(&mut file, records).map_err(|e| fail("writing", e))?;
        file.sync_all().map_err(|e| fail("syncing", e))?;
        std::fs::rename(&tmp, dir.join(LOG_NAME))
            .map_err(|e| fail("renaming over spool.log", e))?;
        let log = Log {
            dir: dir.to_path_buf(),
            file,
            len: HEADER_LEN + n,
            torn: false,
        };
        folder::sync_dir(dir)
            .map_err(|e| Error::io(format_args!("spool folder {}: syncing", dir.display()), &e))?;
        Ok(log)
    }
}

fn check_sizes(records: &[Record]) -> Result<()> {
    for r in records {
        let len = r.payload_len();
        if len > MAX_PAYLOAD {
            let what = match r {
                Record::Content(c) => format!("the content of {:?}", c.key),
                _ => "a record".to_string(),
            };
            return Err(Error::new(
                ErrorKind::TooLarge,
                format!(
                    "{what} is {len} bytes, over the spool's {MAX_PAYLOAD}: nothing of its batch was spooled"
                ),
            ));
        }
    }
    Ok(())
}

/// Encodes and writes `records` in chunks; the bytes written. Sizes are checked already.
fn write_frames(file: &mut File, records: &[Record]) -> std::io::Result<u64> {
    let mut buf =
        Vec::with_capacity(WRITE_CHUNK.min(records.iter().map(|r| r.framed_len() as usize).sum()));
    let mut written = 0;
    for r in records {
        r.encode(&mut buf).expect("sizes checked");
        if buf.len() >= WRITE_CHUNK {
            file.write_all(&buf)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    file.write_all(&buf)?;
    Ok(written + buf.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Secret;
    use crate::spool::record::tests::record;
    use crate::spool::record::{Content, Share};
    use proptest::prelude::*;

    fn share(session: &str) -> Record {
        let secret = Secret::new(&format!("secret-of-{session}"));
        Record::Share(Share {
            session: session.into(),
            secret,
            id: Some("abcd1234".into()),
            url: None,
            created: 0,
            service: None,
            protocol: None,
        })
    }

    fn content(seq: u64, session: &str, n: u64, len: usize) -> Record {
        let text: String = format!("{{\"n\":{seq},\"x\":\"{}\"}}", "é".repeat(len));
        Record::Content(Content {
            seq,
            key: format!("session/part/{session}/m/{n}").into(),
            session: session.into(),
            text: text.into(),
        })
    }

    /// A realistic history: two shares, rewrites, acks, a drop, a removal, a re-share.
    fn history() -> Vec<Record> {
        let mut h = vec![share("a"), share("b")];
        for seq in 1..=24 {
            let session = if seq % 3 == 0 { "b" } else { "a" };
            h.push(content(seq, session, seq % 5, (seq as usize * 7) % 40));
            if seq % 4 == 0 {
                h.push(Record::Ack {
                    key: format!("session/part/a/m/{}", seq % 5).into(),
                    seq,
                });
            }
        }
        h.push(Record::Dropped {
            key: "session/part/b/m/3".into(),
            seq: 18,
        });
        h.push(Record::Remove {
            session: "b".into(),
        });
        h.push(share("b"));
        h.push(content(25, "b", 1, 3));
        h
    }

    /// The log bytes of `records` and where each record ends.
    fn encode(records: &[Record]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = record::header().to_vec();
        let mut ends = Vec::new();
        for r in records {
            r.encode(&mut bytes).unwrap();
            ends.push(bytes.len() as u64);
        }
        (bytes, ends)
    }

    fn live_of(records: &[Record]) -> Live {
        let mut live = Live::default();
        records.iter().for_each(|r| live.apply(r));
        live
    }

    fn scan_bytes(bytes: &[u8]) -> Result<(Live, Scan)> {
        let mut live = Live::default();
        let scan = scan(bytes, bytes.len() as u64, &mut live, Path::new("test.log"))?;
        Ok((live, scan))
    }

    /// `live` is what the first `k` records give.
    fn assert_prefix(live: &Live, records: &[Record], k: usize) {
        let want = live_of(&records[..k]);
        assert_eq!(live.shares(), want.shares(), "shares after {k} records");
        assert_eq!(
            live.contents(),
            want.contents(),
            "contents after {k} records"
        );
        assert_eq!(live.next_seq(), want.next_seq());
    }

    #[test]
    fn every_truncation_reads_the_whole_records_before_it() {
        let records = history();
        let (bytes, ends) = encode(&records);
        for cut in 0..=bytes.len() {
            let (live, scan) = scan_bytes(&bytes[..cut]).unwrap();
            let k = ends.iter().take_while(|&&e| e <= cut as u64).count();
            let valid = if cut < HEADER_LEN as usize {
                0
            } else if k == 0 {
                HEADER_LEN
            } else {
                ends[k - 1]
            };
            assert_eq!(
                scan,
                Scan {
                    records: k as u64,
                    valid_len: valid,
                    skipped: cut as u64 - valid,
                    version: VERSION,
                },
                "cut {cut}"
            );
            assert_prefix(&live, &records, k);
        }
    }

    #[test]
    fn garbage_after_the_last_record_is_skipped_and_counted() {
        let records = history();
        let (bytes, _) = encode(&records);
        let mut rng = fastrand::Rng::with_seed(12);
        for len in [1, 7, 8, 9, 100, 5000] {
            let mut damaged = bytes.clone();
            damaged.extend((0..len).map(|_| rng.u8(..)));
            let (live, scan) = scan_bytes(&damaged).unwrap();
            assert_eq!(
                (scan.records, scan.skipped),
                (records.len() as u64, len as u64)
            );
            assert_prefix(&live, &records, records.len());
        }
    }

    #[test]
    fn a_huge_length_a_bad_checksum_or_a_bad_payload_stops_the_read_without_allocating() {
        let records = history();
        let (bytes, ends) = encode(&records[..3]);
        let framed = |len: u32, crc: Option<u32>, payload: &[u8]| {
            let mut out = bytes.clone();
            let crc = crc.unwrap_or_else(|| record::checksum(&len.to_le_bytes(), payload));
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(payload);
            out
        };
        for damaged in [
            framed(u32::MAX, Some(0), b"x"), // 4 GiB claimed: damage, not an allocation
            framed(MAX_PAYLOAD as u32 + 1, Some(0), &[]), // over the bound
            framed(0, None, &[]),            // empty payload
            framed(3, Some(1), &[5, 0, 0]),  // checksum fails
            framed(2, None, &[9, 9]),        // checksum holds, tag unknown
        ] {
            let (live, scan) = scan_bytes(&damaged).unwrap();
            assert_eq!(scan.records, 3);
            assert_eq!(scan.valid_len, ends[2]);
            assert_eq!(scan.skipped, damaged.len() as u64 - ends[2]);
            assert_prefix(&live, &records, 3);
        }
    }

    #[test]
    fn a_flipped_bit_keeps_the_records_before_it() {
        let records = history();
        let (bytes, ends) = encode(&records);
        for (i, &end) in ends.iter().enumerate().step_by(3) {
            let mut damaged = bytes.clone();
            damaged[end as usize - 1] ^= 0x10; // last byte of record i
            let (live, scan) = scan_bytes(&damaged).unwrap();
            assert_eq!(scan.records, i as u64);
            assert_prefix(&live, &records, i);
        }
    }

    #[test]
    fn a_foreign_file_or_another_version_is_refused() {
        let e = scan_bytes(b"{\"not\": \"a spool\"}").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotASpool);
        assert!(e.message.contains("test.log"), "{e}");
        assert_eq!(scan_bytes(b"OCX").unwrap_err().kind, ErrorKind::NotASpool);
        let mut v3 = record::header();
        v3[8] = 3;
        let e = scan_bytes(&v3).unwrap_err();
        assert!(e.message.contains("version 3"), "{e}");
        // a torn header of ours is an empty log
        assert_eq!(
            scan_bytes(&record::header()[..9]).unwrap().1,
            Scan {
                records: 0,
                valid_len: 0,
                skipped: 9,
                version: VERSION,
            }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
        #[test]
        fn any_cut_plus_any_garbage_reads_a_prefix(
            records in proptest::collection::vec(record(), 0..24),
            cut in any::<prop::sample::Index>(),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (mut bytes, ends) = encode(&records);
            let whole = bytes.clone();
            // cut after the header (a torn header followed by garbage is not a spool at all;
            // every cut inside the header is in every_truncation_reads_the_whole_records_before_it)
            let header = HEADER_LEN as usize;
            bytes.truncate(header + cut.index(bytes.len() - header + 1));
            let k = ends.iter().take_while(|&&e| e <= bytes.len() as u64).count();
            bytes.extend_from_slice(&garbage);
            // garbage that happens to be the very bytes cut off restores the torn record: not damage
            let cut_at = bytes.len() - garbage.len();
            let restores = ends.iter().find(|&&e| e as usize > cut_at).is_some_and(|&e| {
                let need = e as usize - cut_at;
                garbage.len() >= need && garbage[..need] == whole[cut_at..e as usize]
            });
            prop_assume!(!restores);
            let (live, scan) = scan_bytes(&bytes).unwrap();
            // garbage may extend a torn frame into one that passes its checksum only by a
            // 2^-32 chance; anything else reads exactly the whole records before the cut
            prop_assert_eq!(scan.records as usize, k);
            prop_assert_eq!(scan.valid_len + scan.skipped, bytes.len() as u64);
            let want = live_of(&records[..k]);
            prop_assert_eq!(live.shares(), want.shares());
            prop_assert_eq!(live.contents(), want.contents());
        }
    }

    #[test]
    fn open_cuts_a_damaged_tail_so_later_appends_are_read_back() {
        let t = tempfile::tempdir().unwrap();
        let records = history();
        let (bytes, ends) = encode(&records);
        let cut = (ends[9] + 5) as usize; // 5 bytes into record 10
        std::fs::write(t.path().join(LOG_NAME), &bytes[..cut]).unwrap();
        let mut live = Live::default();
        let (mut log, scan) = Log::open(t.path(), &mut live).unwrap();
        assert_eq!((scan.records, scan.skipped), (10, 5));
        assert_eq!(
            std::fs::metadata(t.path().join(LOG_NAME)).unwrap().len(),
            ends[9]
        );
        log.append(&records[10..]).unwrap();
        drop(log);
        let mut live = Live::default();
        let (_, scan) = Log::open(t.path(), &mut live).unwrap();
        assert_eq!((scan.records, scan.skipped), (records.len() as u64, 0));
        assert_eq!(live.contents(), live_of(&records).contents());
        assert_eq!(live.shares(), live_of(&records).shares());
    }
}
