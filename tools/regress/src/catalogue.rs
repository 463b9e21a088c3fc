//! Every tool's case list by short name (the part of a case's name before `": "`), shared
//! by the platforms: the hosted build runs exactly these cases, and the Redox build either
//! runs each or prints it as `n/a` with its reason, so no case is skipped silently. Each
//! platform checks its own lists against these ([`covers`]).

use crate::cases::{Absent, Case};

/// `exec-from-ramfs`'s cases.
pub const EXEC_FROM_RAMFS: &[&str] = &[
    "pages-equal-file",
    "warm-exec",
    "concurrent-execs",
    "busy-unmount",
    "2014-bug",
    "second-namespace",
    "remount-same-qid",
    "changed-in-place",
];

/// `unmount-lifecycle`'s cases.
pub const UNMOUNT_LIFECYCLE: &[&str] = &[
    "open-files",
    "cached-mounts",
    "busy-binary",
    "many-mounts",
    "server-killed",
    "interrupted-reads",
    "never-answers",
    "hung-unmount",
];

/// The short name of a case's full name.
pub fn short_name(name: &str) -> &str {
    name.split_once(": ").map_or(name, |(short, _)| short)
}

/// The short names of `cases`, in order: what a platform's case list is compared with.
pub fn short_names<E>(cases: &[Case<E>]) -> Vec<&str> {
    cases.iter().map(|(name, _)| short_name(name)).collect()
}

/// Checks that each of `catalogue`'s cases is run (`cases`) or named as absent (`absent`),
/// exactly once, and that nothing is named absent that the catalogue does not have; cases
/// of a platform's own beyond the catalogue are allowed. `Err` says what is wrong.
pub fn covers<E>(catalogue: &[&str], cases: &[Case<E>], absent: &[Absent]) -> Result<(), String> {
    let names = || {
        cases
            .iter()
            .map(|(name, _)| short_name(name))
            .chain(absent.iter().map(|(name, _)| short_name(name)))
    };
    for wanted in catalogue {
        let found = names().filter(|name| name == wanted).count();
        if found != 1 {
            return Err(format!("case {wanted} is listed {found} times, not once"));
        }
    }
    if let Some((extra, _)) = absent
        .iter()
        .find(|(name, _)| !catalogue.contains(&short_name(name)))
    {
        return Err(format!(
            "{} is named absent but is no case of the tool",
            short_name(extra)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: &()) -> Result<(), crate::Failure> {
        Ok(())
    }

    #[test]
    fn coverage_is_checked_both_ways() {
        let cases: &[Case<()>] = &[("a: first", nothing)];
        let absent: &[Absent] = &[("b: second", "why")];
        assert_eq!(covers(&["a", "b"], cases, absent), Ok(()));
        assert!(covers(&["a", "b", "c"], cases, absent).is_err());
        assert!(covers(&["a"], cases, absent).is_err());
        assert!(covers(&["a", "b"], &[("a: x", nothing), ("a: y", nothing)], absent).is_err());
        // A platform's own extra case is fine.
        assert_eq!(covers(&["b"], cases, absent), Ok(()));
    }
}
