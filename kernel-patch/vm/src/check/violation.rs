//! What the checker reports: the rule broken ([`Violation`]) or, on success, what it
//! counted ([`CheckReport`]).

use core::fmt;

use crate::file::FileIdentity;
use crate::mapping::check::MapViolation;

/// A broken rule, with the page index or image identity it was found at.
///
/// Fields: `page` is a page's index in the metadata array, `identity` the image's file,
/// the counts are named after the image's and page's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields are described above, once for all variants
pub enum Violation {
    /// A rule of the mappings (`mapping/check.rs`).
    Mapping(MapViolation),
    /// A table entry's key is not its image's identity (or its slot holds no image).
    TableKeyMismatch { identity: FileIdentity },
    /// An image or a mount-cache file is in another shard than its identity hashes to.
    WrongShard { identity: FileIdentity },
    /// A shard's idle list or mount-cache order is not in stamp order (at this entry).
    ListOutOfOrder { identity: FileIdentity },
    /// A mount-cache file has pages but is not on its shard's reclaim list (reclaim would
    /// never find them).
    McacheUnreclaimable { identity: FileIdentity },
    /// A shard's maps, slabs and lists disagree on how many entries it has.
    ShardCountMismatch { shard: usize },
    /// The counts that span the shards (images, idle images, mount-cache files) are not
    /// the shards' sums; the recorded ones are given.
    TableCountMismatch { images: u32, idle: u32, files: u32 },
    /// An image reachable from a segment is not the table's image of its identity: two
    /// images share an identity, or a referenced image was unlinked.
    DuplicateIdentity { identity: FileIdentity },
    /// A page is in a chain of an image other than the one its metadata names.
    PageOwnerMismatch { page: u32, identity: FileIdentity },
    /// A page is in a chain its offset does not hash to.
    PageInWrongChain { page: u32 },
    /// A page is in more than one chain (or twice in one).
    PageInTwoChains { page: u32 },
    /// Two pages of one image at the same offset.
    DuplicateOffset { identity: FileIdentity, offset: u64 },
    /// `pgref` is not the number of pages in the image's chains.
    PgrefMismatch {
        identity: FileIdentity,
        pgref: u32,
        chained: u32,
    },
    /// `pgref > refs`.
    PgrefAboveRef {
        identity: FileIdentity,
        pgref: u32,
        refs: u32,
    },
    /// The channel is present although `refs == pgref`, or missing although `refs > pgref`.
    ChannelPresence {
        identity: FileIdentity,
        refs: u32,
        pgref: u32,
        has_channel: bool,
    },
    /// An image is on the idle list although `refs != pgref`, or off it although
    /// `refs == pgref`.
    IdleMismatch {
        identity: FileIdentity,
        refs: u32,
        pgref: u32,
        idle: bool,
    },
    /// An image with no reference is still in the table.
    UnreferencedImage { identity: FileIdentity },
    /// A text segment in an image's list has count 0.
    DeadTextSegment { identity: FileIdentity },
    /// A page on the free list is referenced, cached, in a chain or has no frame.
    FreePageInUse { page: u32 },
    /// A page is marked free but is not on the free list.
    FreeFlagOffList { page: u32 },
    /// The free list's length differs from its count (or it has a cycle).
    FreeCountMismatch { counted: u32, recorded: u32 },
    /// A page was freed twice.
    DoubleFree { count: u32 },
    /// A page at ref 0 that is neither free nor cached: lost.
    PageLost { page: u32 },
    /// A page names an owner image but is in no chain.
    CachedPageNotInChain { page: u32 },
    /// A lent page is on the free list.
    LentPageFree { page: u32 },
    /// An orphan without loans, or with an owner or a reference (or on the free list).
    OrphanPage { page: u32, loans: u32, refs: u32 },
    /// The pages' loans are not the loans outstanding, or the orphans not those counted.
    LoanCount {
        lent: u64,
        recorded: u64,
        orphans: u64,
    },
    /// A page is marked as being loaded although no fault runs (a load that never
    /// finished or was never taken back).
    PageLoading { page: u32 },
    /// A page's reference count differs from the number of segment mappings of it (only
    /// checked when every live segment is given).
    PageRefMismatch { page: u32, refs: u32, mapped: u32 },
    /// An image's `refs` differs from `pgref` plus the segments using it (only checked when
    /// every live segment is given).
    ImageRefMismatch {
        identity: FileIdentity,
        refs: u32,
        expected: u32,
    },
    /// A segment maps a page that is free or unbound.
    MappedPageFree { page: u32 },
    /// A mount-cache map key is not its image's file.
    McacheKeyMismatch { identity: FileIdentity },
    /// A mount-cache image is in the map but marked unlinked.
    McacheUnlinked { identity: FileIdentity },
    /// A mount-cache page is referenced (its pages live at ref 0 in the chains).
    McachePageInUse { page: u32, refs: u32 },
    /// A mount-cache page's valid range is empty, inverted, past the page, or the page's
    /// offset is not page aligned.
    McacheBadRange { page: u32, start: usize, end: usize },
    /// A linked mount-cache image's `refs` is not `pgref + 1` (its pages and the map).
    McacheRefMismatch {
        identity: FileIdentity,
        refs: u32,
        pgref: u32,
    },
    /// A file holds more mount-cache pages than the per-file limit.
    McacheFileOverLimit {
        identity: FileIdentity,
        pages: u32,
        limit: u32,
    },
    /// The mount cache holds more pages than its limit.
    McacheOverLimit { pages: u32, limit: u32 },
    /// The mount cache's page count differs from its chains' population.
    McacheCountMismatch { counted: u32, recorded: u32 },
    /// More mount-cache files than the limit.
    McacheTooManyFiles { files: u32, limit: u32 },
    /// The same identity (with its version) is cached by an executable image and by the
    /// mount cache.
    DoubleCached { identity: FileIdentity },
    /// The zero page's frame holds a byte other than zero at `offset`.
    ZeroFrameWritten { offset: usize },
    /// A page of the pool has the zero page's frame (so it may be free, cached or written).
    ZeroFrameInPool { page: u32 },
    /// A segment maps the zero page at `addr`, a page that holds file bytes.
    ZeroPageOverFile { addr: u64 },
    /// The count of entries mapping the zero page is not what the segments hold (only
    /// checked when every live segment is given).
    ZeroEntryMismatch { counted: u64, recorded: u64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vm invariant violated: {self:?}")
    }
}

impl core::error::Error for Violation {}

/// What the checker counted, on success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Pages with a frame.
    pub bound_pages: u32,
    /// Pages on the free list.
    pub free_pages: u32,
    /// Pages in executable images' chains.
    pub cached_pages: u32,
    /// Pages neither free nor cached, at ref > 0 (private, mapped).
    pub private_pages: u32,
    /// Images in the table.
    pub images: u32,
    /// Images on the idle list.
    pub idle_images: u32,
    /// Images holding a channel.
    pub open_channels: u32,
    /// Files in the mount cache.
    pub mcache_files: u32,
    /// Pages in mount-cache images' chains.
    pub mcache_pages: u32,
    /// Mapped file objects, each holding its file's channel.
    pub object_channels: u32,
}
