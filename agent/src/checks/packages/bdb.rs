//! Berkeley DB hash databases, read without libdb: rpm's `Packages` on RHEL/CentOS 7 and 8,
//! Amazon Linux 2, SLES 12 and older Fedora. Only what rpm stores there is supported: one hash
//! database (no sub-databases), no encryption, no checksums, no duplicate keys.
//!
//! The layout (Berkeley DB 4.x/5.x, `dbinc/db_page.h`): page 0 is the hash metadata page
//! (magic 0x061561, page size, last page number); every page starts with a 26-byte header
//! (`lsn`, `pgno`, `prev_pgno`, `next_pgno`, `entries`, `hf_offset`, `level`, `type`).
//! Hash pages (type 2 or 13) hold an array of `entries` 16-bit item offsets after the header;
//! items alternate key, data, and an item's length is the distance to the previous item's
//! offset (the first runs to the end of the page). An item is either inline (`H_KEYDATA`, a
//! type byte then the bytes) or off-page (`H_OFFPAGE`: the first page and total length of a
//! chain of overflow pages, type 7, each holding `hf_offset` bytes after its header). Numbers
//! are in the byte order of the machine that wrote the file; the magic tells which.
//!
//! Pages are read one at a time, so memory stays at one page plus the value being assembled.

use std::fs::File;
use std::os::unix::fs::FileExt;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;
/// rpm refuses headers above 256 MiB; so do we, for any value.
const MAX_VALUE: u32 = 256 << 20;

/// Why a Berkeley DB file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BdbError {
    #[error("cannot read page {page}: {message}")]
    Io { page: u32, message: String },
    #[error("not a Berkeley DB hash database (magic {0:#x})")]
    NotHash(u32),
    #[error("page size {0} is not a power of two between 512 and 65536")]
    PageSize(u32),
    #[error("encrypted or checksummed Berkeley DB databases are not supported")]
    Protected,
    #[error("page {page}: {message}")]
    Corrupt { page: u32, message: String },
}

/// What the metadata page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub page_size: u32,
    pub last_page: u32,
    /// The file was written on a machine of the other byte order.
    pub swapped: bool,
}

fn u32_at(b: &[u8], at: usize, swapped: bool) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if swapped {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

fn u16_at(b: &[u8], at: usize, swapped: bool) -> Option<u16> {
    let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if swapped {
        u16::from_be_bytes(bytes)
    } else {
        u16::from_le_bytes(bytes)
    })
}

/// Parses the metadata page (its first 72 bytes suffice).
pub fn parse_meta(page: &[u8]) -> Result<Meta, BdbError> {
    let short = || BdbError::Corrupt {
        page: 0,
        message: "metadata page too short".into(),
    };
    let le = u32_at(page, 12, false).ok_or_else(short)?;
    let swapped = match le {
        HASH_MAGIC => false,
        m if m.swap_bytes() == HASH_MAGIC => true,
        m => return Err(BdbError::NotHash(m)),
    };
    let page_size = u32_at(page, 20, swapped).ok_or_else(short)?;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(BdbError::PageSize(page_size));
    }
    let encrypt_alg = page.get(24).copied().ok_or_else(short)?;
    let page_type = page.get(25).copied().ok_or_else(short)?;
    let meta_flags = page.get(26).copied().ok_or_else(short)?;
    if page_type != P_HASHMETA {
        return Err(BdbError::Corrupt {
            page: 0,
            message: format!("page type {page_type} where the hash metadata page belongs"),
        });
    }
    // DBMETA_CHKSUM = 0x01.
    if encrypt_alg != 0 || meta_flags & 0x01 != 0 {
        return Err(BdbError::Protected);
    }
    let last_page = u32_at(page, 32, swapped).ok_or_else(short)?;
    Ok(Meta {
        page_size,
        last_page,
        swapped,
    })
}

/// One item of a hash page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    Inline(&'a [u8]),
    OffPage {
        first_page: u32,
        length: u32,
    },
    /// Duplicate sets (not used by rpm): reported, not read.
    Duplicates,
}

/// The page's type byte and the fields of its header that the reader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    pub number: u32,
    pub next: u32,
    pub entries: u16,
    pub hf_offset: u16,
    pub kind: u8,
}

pub fn page_header(page: &[u8], swapped: bool) -> Option<PageHeader> {
    Some(PageHeader {
        number: u32_at(page, 8, swapped)?,
        next: u32_at(page, 16, swapped)?,
        entries: u16_at(page, 20, swapped)?,
        hf_offset: u16_at(page, 22, swapped)?,
        kind: *page.get(25)?,
    })
}

/// The items of a hash page, in order (key, data, key, data, …).
pub fn hash_items(page: &[u8], swapped: bool) -> Result<Vec<Item<'_>>, String> {
    let header = page_header(page, swapped).ok_or("page too short")?;
    let entries = usize::from(header.entries);
    let mut items = Vec::with_capacity(entries);
    let mut end = page.len();
    for i in 0..entries {
        let offset = usize::from(
            u16_at(page, PAGE_HEADER + 2 * i, swapped).ok_or("item index beyond the page")?,
        );
        if offset < PAGE_HEADER + 2 * entries || offset >= end {
            return Err(format!("item {i} at offset {offset} is out of place"));
        }
        let item = &page[offset..end];
        end = offset;
        items.push(match item[0] {
            H_KEYDATA => Item::Inline(&item[1..]),
            H_OFFPAGE => Item::OffPage {
                first_page: u32_at(item, 4, swapped).ok_or("short off-page item")?,
                length: u32_at(item, 8, swapped).ok_or("short off-page item")?,
            },
            H_DUPLICATE | H_OFFDUP => Item::Duplicates,
            other => return Err(format!("item {i} has unknown type {other}")),
        });
    }
    Ok(items)
}

/// A source of pages: the file, or bytes in tests.
pub trait Pages {
    fn read_page(&self, number: u32, page_size: u32, into: &mut [u8]) -> Result<(), String>;
}

impl Pages for File {
    fn read_page(&self, number: u32, page_size: u32, into: &mut [u8]) -> Result<(), String> {
        self.read_exact_at(into, u64::from(number) * u64::from(page_size))
            .map_err(|e| e.to_string())
    }
}

impl Pages for [u8] {
    fn read_page(&self, number: u32, page_size: u32, into: &mut [u8]) -> Result<(), String> {
        let start =
            usize::try_from(u64::from(number) * u64::from(page_size)).map_err(|e| e.to_string())?;
        let bytes = self
            .get(start..start + into.len())
            .ok_or("beyond the end of the file")?;
        into.copy_from_slice(bytes);
        Ok(())
    }
}

/// Counts of what could not be read, beside the values that could.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Pages whose items do not hold together.
    pub pages: usize,
    /// Values that are duplicate sets or whose overflow chain is broken.
    pub values: usize,
}

/// Calls `each(key, value)` for every key/value pair of the hash database. Structural damage
/// confined to one page or one value is counted in the returned [`Skipped`], not fatal.
pub fn for_each<P: Pages + ?Sized>(
    source: &P,
    mut each: impl FnMut(&[u8], &[u8]),
) -> Result<Skipped, BdbError> {
    let mut first = vec![0u8; 512];
    source
        .read_page(0, 512, &mut first)
        .map_err(|message| BdbError::Io { page: 0, message })?;
    let meta = parse_meta(&first)?;
    let size = meta.page_size as usize;
    let mut page = vec![0u8; size];
    let mut overflow = vec![0u8; size];
    let mut skipped = Skipped::default();
    for number in 1..=meta.last_page {
        source
            .read_page(number, meta.page_size, &mut page)
            .map_err(|message| BdbError::Io {
                page: number,
                message,
            })?;
        let Some(header) = page_header(&page, meta.swapped) else {
            continue;
        };
        if header.kind != P_HASH && header.kind != P_HASH_UNSORTED {
            continue;
        }
        let items = match hash_items(&page, meta.swapped) {
            Ok(items) => items,
            Err(_) => {
                skipped.pages += 1;
                continue;
            }
        };
        for pair in items.chunks(2) {
            let [key, value] = pair else {
                skipped.pages += 1;
                continue;
            };
            let key: Vec<u8> = match key {
                Item::Inline(k) => k.to_vec(),
                Item::OffPage { first_page, length } => {
                    match read_overflow(source, &meta, *first_page, *length, &mut overflow) {
                        Ok(k) => k,
                        Err(_) => {
                            skipped.values += 1;
                            continue;
                        }
                    }
                }
                Item::Duplicates => {
                    skipped.values += 1;
                    continue;
                }
            };
            match value {
                Item::Inline(v) => each(&key, v),
                Item::OffPage { first_page, length } => {
                    match read_overflow(source, &meta, *first_page, *length, &mut overflow) {
                        Ok(v) => each(&key, &v),
                        Err(_) => skipped.values += 1,
                    }
                }
                Item::Duplicates => skipped.values += 1,
            }
        }
    }
    Ok(skipped)
}

/// Follows an overflow chain and assembles the value.
fn read_overflow<P: Pages + ?Sized>(
    source: &P,
    meta: &Meta,
    first_page: u32,
    length: u32,
    page: &mut [u8],
) -> Result<Vec<u8>, String> {
    if length > MAX_VALUE {
        return Err(format!("value of {length} bytes"));
    }
    let mut value = Vec::with_capacity(length as usize);
    let mut next = first_page;
    let mut hops = 0u32;
    while value.len() < length as usize {
        if next == 0 || next > meta.last_page || hops > meta.last_page {
            return Err(format!("overflow chain broken at page {next}"));
        }
        source.read_page(next, meta.page_size, page)?;
        let header = page_header(page, meta.swapped).ok_or("short overflow page")?;
        if header.kind != P_OVERFLOW {
            return Err(format!("page {next} is not an overflow page"));
        }
        let used = usize::from(header.hf_offset);
        let data = page
            .get(PAGE_HEADER..PAGE_HEADER + used)
            .ok_or("overflow length beyond the page")?;
        value.extend_from_slice(data);
        next = header.next;
        hops += 1;
    }
    value.truncate(length as usize);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little hash database built by hand: metadata page, one hash page with an inline and
    /// an off-page value, two overflow pages.
    fn tiny(swapped: bool) -> Vec<u8> {
        let size = 512usize;
        let mut file = vec![0u8; size * 4];
        let put32 = |b: &mut [u8], at: usize, v: u32| {
            let bytes = if swapped {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            b[at..at + 4].copy_from_slice(&bytes);
        };
        let put16 = |b: &mut [u8], at: usize, v: u16| {
            let bytes = if swapped {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            b[at..at + 2].copy_from_slice(&bytes);
        };
        // Metadata.
        put32(&mut file, 12, HASH_MAGIC);
        put32(&mut file, 20, size as u32);
        file[25] = P_HASHMETA;
        put32(&mut file, 32, 3);
        // Page 1: hash page, 4 items: key 1 inline "small", key 2 off-page (600 bytes).
        let p = size;
        put32(&mut file, p + 8, 1);
        file[p + 25] = P_HASH;
        put16(&mut file, p + 20, 4);
        let mut end = size;
        let mut items: Vec<Vec<u8>> = Vec::new();
        let key = |n: u32| {
            let mut v = vec![H_KEYDATA];
            v.extend_from_slice(&n.to_le_bytes());
            v
        };
        items.push(key(1));
        items.push([vec![H_KEYDATA], b"small".to_vec()].concat());
        items.push(key(2));
        let mut off = vec![H_OFFPAGE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        put32(&mut off, 4, 2);
        put32(&mut off, 8, 600);
        items.push(off);
        for (i, item) in items.iter().enumerate() {
            end -= item.len();
            file[p + end..p + end + item.len()].copy_from_slice(item);
            put16(&mut file, p + PAGE_HEADER + 2 * i, end as u16);
        }
        // Pages 2 and 3: the 600-byte value, 486 + 114 bytes.
        let value: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
        for (n, chunk, next) in [(2usize, &value[..486], 3u32), (3, &value[486..], 0)] {
            let q = n * size;
            put32(&mut file, q + 8, n as u32);
            put32(&mut file, q + 16, next);
            put16(&mut file, q + 22, chunk.len() as u16);
            file[q + 25] = P_OVERFLOW;
            file[q + PAGE_HEADER..q + PAGE_HEADER + chunk.len()].copy_from_slice(chunk);
        }
        file
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn collect(bytes: &[u8]) -> (Pairs, Skipped) {
        let mut pairs = Vec::new();
        let skipped = for_each(bytes, |k, v| pairs.push((k.to_vec(), v.to_vec()))).unwrap();
        (pairs, skipped)
    }

    #[test]
    fn inline_and_overflow_values_in_both_byte_orders() {
        for swapped in [false, true] {
            let (pairs, skipped) = collect(&tiny(swapped));
            assert_eq!(skipped, Skipped::default());
            assert_eq!(pairs.len(), 2);
            assert_eq!(pairs[0], (1u32.to_le_bytes().to_vec(), b"small".to_vec()));
            assert_eq!(pairs[1].1.len(), 600);
            assert!(
                pairs[1]
                    .1
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == (i % 251) as u8)
            );
        }
    }

    #[test]
    fn a_broken_overflow_chain_skips_the_value_not_the_database() {
        let mut file = tiny(false);
        // Page 2 points to page 9, beyond the last page.
        file[2 * 512 + 16..2 * 512 + 20].copy_from_slice(&9u32.to_le_bytes());
        let (pairs, skipped) = collect(&file);
        assert_eq!(pairs.len(), 1);
        assert_eq!(skipped.values, 1);
    }

    #[test]
    fn an_overflow_loop_ends() {
        let mut file = tiny(false);
        // Page 2 points to itself and claims few bytes: the hop limit ends it.
        file[2 * 512 + 16..2 * 512 + 20].copy_from_slice(&2u32.to_le_bytes());
        file[2 * 512 + 22..2 * 512 + 24].copy_from_slice(&1u16.to_le_bytes());
        let (_, skipped) = collect(&file);
        assert_eq!(skipped.values, 1);
    }

    #[test]
    fn items_out_of_place_skip_the_page() {
        let mut file = tiny(false);
        // The first item offset points into the index array.
        file[512 + PAGE_HEADER..512 + PAGE_HEADER + 2].copy_from_slice(&27u16.to_le_bytes());
        let (pairs, skipped) = collect(&file);
        assert!(pairs.is_empty());
        assert_eq!(skipped.pages, 1);
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        assert!(matches!(
            for_each(&[0u8; 512][..], |_, _| {}),
            Err(BdbError::NotHash(0))
        ));
        let mut btree = tiny(false);
        btree[12..16].copy_from_slice(&0x0005_3162u32.to_le_bytes());
        assert!(matches!(
            for_each(&btree[..], |_, _| {}),
            Err(BdbError::NotHash(0x53162))
        ));
        let mut odd = tiny(false);
        odd[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(for_each(&odd[..], |_, _| {}), Err(BdbError::PageSize(1000)));
        let mut sums = tiny(false);
        sums[26] = 0x01;
        assert_eq!(for_each(&sums[..], |_, _| {}), Err(BdbError::Protected));
        assert!(matches!(
            for_each(&[0u8; 100][..], |_, _| {}),
            Err(BdbError::Io { page: 0, .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let base = tiny(false);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut file = base.clone();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = 12 + (seed as usize % (file.len() - 12));
                file[at] = (seed >> 32) as u8;
            }
            let _ = for_each(&file[..], |_, _| {});
        }
    }
}
