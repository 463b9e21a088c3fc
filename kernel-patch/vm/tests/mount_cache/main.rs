//! Unit tests of the mount cache: validation at open, fills, our own writes, wipes, limits,
//! reclaim, no double caching with the image cache, and stale fills.
//!
//! One topic a module; here the helpers they share.

#[path = "../common/mod.rs"]
mod common;

mod failure;
mod handles;
mod limits;
mod validation;
mod writes;

use common::*;
use vm::{Access, CachedFile, Config, FileIdentity, MountCacheConfig, OpenKind, SegmentKind};

fn mc_config() -> MountCacheConfig {
    MountCacheConfig {
        max_file_bytes: 8 * PAGE,
        max_bytes: 16 * PAGE,
        max_files: 4,
    }
}

fn mworld() -> World {
    mc_world(small_config(), mc_config())
}

/// A data file (not a program) on mount `dev`.
fn data_ident(path: u64, vers: u64) -> FileIdentity {
    ident(7, 1000 + path, vers)
}

fn open(world: &World, identity: FileIdentity, data: &[u8]) -> CachedFile {
    world
        .vm
        .mount_cache()
        .open(identity, data.len() as u64, OpenKind::Existing, false)
}
