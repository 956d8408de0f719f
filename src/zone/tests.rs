//! Unit tests of zones: metadata layout (headers packed, arrays on pages of their own),
//! slots taken and given back, indices of every byte of a slot, and cached metadata.

use super::*;

#[test]
fn metadata_arrays_keep_lines_and_pages() {
    for page in [4096usize, 16384, 65536] {
        for c in 0..NCLASSES {
            let n = zone_size(c, page) / class_size(c);
            for debug in [false, true] {
                let (dbg, len) = meta_layout(n, debug);
                assert_eq!(len % 64, 0);
                assert!(len >= n * 8);
                if debug {
                    assert_eq!(dbg % 64, 0);
                    assert!(dbg >= n * 8 && len >= dbg + n * 32);
                }
            }
        }
        // Arrays of a page or more start on one; smaller ones never cross one.
        assert_eq!(arrays_at(page + 64, page, page), 2 * page);
        assert_eq!(arrays_at(page + 64, 128, page), page + 64);
        assert_eq!(arrays_at(2 * page - 64, 128, page), 2 * page);
        assert_eq!(arrays_at(2 * page - 128, 128, page), 2 * page - 128);
    }
}

/// Headers of new zones share a page, 64-byte aligned; each zone's arrays start on a page
/// when they span one; a destroyed zone's header comes back with its arrays, cleared.
#[test]
fn headers_share_a_page_and_arrays_start_on_one() {
    let page = sys::page_size();
    let mut cache = MetaCache::EMPTY;
    let a = Zone::create(20, 3, false, false, &mut cache).unwrap();
    let b = Zone::create(30, 3, true, false, &mut cache).unwrap();
    // SAFETY: zones of our own, used by this thread only.
    unsafe {
        let (ha, hb) = (a as usize, b as usize);
        assert_eq!(ha % pagemap::HEADER_ALIGN, 0);
        assert_eq!(hb, ha + core::mem::size_of::<Zone>());
        for z in [a, b] {
            let meta = (*z).meta as usize;
            if (*z).nblocks as usize * 8 >= page {
                assert_eq!(meta % page, 0);
                assert_ne!(meta / page, z as usize / page);
            }
        }
        assert_eq!((*a).dbg, core::ptr::null_mut());
        assert_eq!((*b).dbg as usize % 64, 0);
        let (arrays, _) = ((*b).meta, (*b).take().unwrap());
        (*b).meta(0).state = crate::block::USED;
        ((*b).dbg as *mut u64).write(7);
        (*b).give(0);
        Zone::destroy(b, &mut cache);
        let c = Zone::create(30, 3, true, false, &mut cache).unwrap();
        assert_eq!((c, (*c).meta), (b, arrays));
        assert_eq!(
            (*((*c).meta as *const u64), *((*c).dbg as *const u64)),
            (0, 0)
        );
        assert_eq!((*c).hiwater, 0);
        Zone::destroy(c, &mut cache);
        Zone::destroy(a, &mut cache);
    }
}

/// Takes and gives back slots of a real zone of `class`: slot addresses and the index of
/// every byte of a slot, fresh slots, the free list (LIFO), a full zone, and an empty one
/// starting again from its first slot.
fn take_and_give(class: usize, debug: bool, guards: bool) {
    let page = sys::page_size();
    let mut cache = MetaCache::EMPTY;
    let z = Zone::create(class, 5, debug, guards, &mut cache).unwrap();
    // SAFETY: a zone of our own, used by this thread only.
    let zr = unsafe { &mut *z };
    let bs = class_size(class);
    assert_eq!(zr.block_size as usize, bs);
    assert_eq!(zr.nblocks as usize, zone_size(class, page) / bs);
    assert!(zr.nblocks as usize >= crate::size_class::MIN_BLOCKS_PER_ZONE);
    assert_eq!(zr.is_tiny(), class < crate::size_class::NTINY);
    assert_eq!(zr.dbg.is_null(), !debug);
    assert_eq!(zr.index_of(zr.data.wrapping_sub(1)), None);
    assert_eq!(zr.index_of(zr.data + zr.data_len), None);
    let n = zr.nblocks as usize;
    for i in 0..n {
        // SAFETY: the zone has room until n slots are taken.
        let (k, fresh) = unsafe { zr.take() }.unwrap();
        assert_eq!((k, fresh), (i, true));
        let s = zr.slot_addr(i);
        assert_eq!(s, zr.data + i * bs);
        for off in [0, 1, bs / 2, bs - 1] {
            assert_eq!(zr.index_of(s + off), Some(i));
        }
        // The page map names this zone and its arena for every page a slot is on.
        assert_eq!(
            pagemap::decode(pagemap::get(s + bs - 1)),
            pagemap::Owner::Zone {
                arena: 5,
                zone: z as usize
            }
        );
    }
    assert!(!zr.has_room());
    assert_eq!(zr.nused as usize, n);
    // SAFETY: slots 3 and 7 are used slots of this zone.
    unsafe {
        zr.give(3);
        zr.give(7);
    }
    assert!(zr.has_room());
    // SAFETY: the zone has room; then every used slot goes back.
    unsafe {
        assert_eq!(zr.take(), Some((7, false)));
        assert_eq!(zr.take(), Some((3, false)));
        for i in 0..n {
            zr.give(i);
        }
    }
    assert_eq!((zr.nused, zr.nfree, zr.bump), (0, 0, 0));
    assert_eq!(zr.hiwater as usize, n);
    let data = zr.data;
    // SAFETY: an empty zone, on no list.
    unsafe {
        assert_eq!(zr.take(), Some((0, false)));
        zr.give(0);
        Zone::destroy(z, &mut cache);
    }
    // Its pages left the page map before they were unmapped.
    assert_eq!(pagemap::get(data), 0);
}

#[test]
fn zone_slots_and_indices() {
    let tiny = crate::size_class::NTINY;
    for class in [0, 1, 7, tiny - 1, tiny, NCLASSES - 1] {
        take_and_give(class, false, false);
        take_and_give(class, true, true);
    }
}
