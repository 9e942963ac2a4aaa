//! Promises and unveil rules: normalization, the `:` and `..` rules, bad input, round trips.

use pledge_core::{Promise, PromiseSet, UnveilPerm, UnveilRule};
use proptest::prelude::*;
use std::path::Path;

fn set(names: &[Promise]) -> PromiseSet {
    names.iter().copied().collect()
}

#[test]
fn promises_fold_case_whitespace_commas_and_duplicates() {
    let p = PromiseSet::parse("  INET\tstdio\n\r rpath,Stdio  inet\u{a0}dns ").unwrap();
    assert_eq!(
        p,
        set(&[Promise::Stdio, Promise::Rpath, Promise::Inet, Promise::Dns])
    );
    assert_eq!(p.to_string(), "stdio rpath inet dns");
}

#[test]
fn every_promise_name_parses() {
    for p in Promise::ALL {
        assert_eq!(PromiseSet::parse(p.name()).unwrap(), set(&[p]));
    }
    let all = Promise::ALL.map(Promise::name).join(" ");
    assert_eq!(PromiseSet::parse(&all).unwrap().len(), Promise::ALL.len());
}

#[test]
fn unknown_promises_are_reported_together_with_the_known_list() {
    let e = PromiseSet::parse("stdio inett rpathh inett").unwrap_err();
    assert_eq!(e.field, "promises");
    assert!(
        e.reason
            .starts_with(r#"unknown promises "inett" "rpathh" (known: stdio rpath wpath"#),
        "{}",
        e.reason
    );
    assert!(e.reason.ends_with("settime unveil)"), "{}", e.reason);
    let e = PromiseSet::parse("inett").unwrap_err();
    assert!(
        e.reason.starts_with(r#"unknown promise "inett" (known:"#),
        "{}",
        e.reason
    );
}

#[test]
fn blank_promises_parse_to_the_empty_set() {
    for s in ["", " ", "\t\n", ",,"] {
        assert!(PromiseSet::parse(s).unwrap().is_empty(), "{s:?}");
    }
}

#[test]
fn hostile_promise_strings_are_errors_not_panics() {
    let huge = "x".repeat(1 << 20);
    let e = PromiseSet::parse(&huge).unwrap_err();
    assert!(e.to_string().len() < 1200, "the message stays short");
    let many: String = (0..10_000).map(|i| format!("bad{i} ")).collect();
    let e = PromiseSet::parse(&many).unwrap_err();
    assert!(e.reason.contains("and 9992 more"), "{}", e.reason);
    for s in ["stdio\0rpath", "stdïo", "🦀", "std io", "prot-exec"] {
        assert!(PromiseSet::parse(s).is_err(), "{s:?}");
    }
    // Case folding goes through Unicode lowering, still only exact names match.
    assert_eq!(PromiseSet::parse("STDIO").unwrap(), set(&[Promise::Stdio]));
}

fn rule(s: &str) -> UnveilRule {
    UnveilRule::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn unveil_default_perm_is_read() {
    let r = rule("/etc/ssl");
    assert_eq!(r.path, Path::new("/etc/ssl"));
    assert_eq!(r.perm, UnveilPerm::READ);
    assert_eq!(r.to_string(), "r:/etc/ssl");
}

#[test]
fn unveil_perm_letters_any_order_and_repeats() {
    let r = rule("cxwrr:/data");
    assert_eq!(r.perm, UnveilPerm::all());
    assert_eq!(r.perm_letters(), "rwxc");
    assert_eq!(rule("w:/x").perm, UnveilPerm::WRITE);
}

#[test]
fn unveil_colon_rule() {
    // Text before the first ':' is not perms → the whole string is the path.
    let r = rule("/srv/a:b");
    assert_eq!(
        (r.path.to_str(), r.perm),
        (Some("/srv/a:b"), UnveilPerm::READ)
    );
    // Explicit prefix for a path containing ':'.
    let r = rule("rw:/weird:path");
    assert_eq!(r.path, Path::new("/weird:path"));
    assert_eq!(r.perm, UnveilPerm::READ | UnveilPerm::WRITE);
    assert_eq!(rule(&r.to_string()), r);
    // A prefix starting with '/' is a path.
    assert_eq!(rule("/r:/x").path, Path::new("/r:/x"));
    // Uppercase letters are not perms; the result is a relative path and is rejected with a
    // hint about the prefix syntax.
    let e = UnveilRule::parse("R:/x").unwrap_err();
    assert!(e.contains("only the letters r, w, x, c"), "{e}");
    let e = UnveilRule::parse(":/x").unwrap_err();
    assert!(e.contains("only the letters"), "{e}");
    let e = UnveilRule::parse("rw:relative").unwrap_err();
    assert!(e.contains("not absolute"), "{e}");
}

#[test]
fn unveil_normalizes_dot_and_slashes_and_rejects_dotdot() {
    assert_eq!(rule("r:/a/./b//c/").path, Path::new("/a/b/c"));
    assert_eq!(rule("//").path, Path::new("/"));
    assert_eq!(rule("/.").path, Path::new("/"));
    for s in ["/a/../etc", "r:/..", "/a/b/..", "rw:/x/../../y"] {
        let e = UnveilRule::parse(s).unwrap_err();
        assert!(e.contains("\"..\""), "{s:?}: {e}");
    }
    // `..` inside a name is just a name.
    assert_eq!(rule("/a/..b/c..").path, Path::new("/a/..b/c.."));
}

#[test]
fn unveil_bad_input_is_a_clear_error() {
    let cases: &[(&str, &str)] = &[
        ("", "must not be empty"),
        ("relative/path", "not absolute"),
        ("./x", "not absolute"),
        ("~/x", "not absolute"),
        ("r:", "not absolute"),
        ("/a\0b", "NUL"),
        ("r:/a\0", "NUL"),
    ];
    for (s, want) in cases {
        let e = UnveilRule::parse(s).unwrap_err();
        assert!(e.contains(want), "{s:?}: {e}");
    }
    let long = format!("/{}", "a".repeat(4096));
    assert!(UnveilRule::parse(&long)
        .unwrap_err()
        .contains("at most 4095"));
    let mb = format!("/{}", "a".repeat(1 << 20));
    let e = UnveilRule::parse(&mb).unwrap_err();
    assert!(e.len() < 200, "{}", e.len());
    // Unicode paths are fine.
    assert_eq!(rule("/données/日本").path, Path::new("/données/日本"));
}

proptest! {
    #[test]
    fn promise_set_display_round_trips(bits in proptest::collection::vec(any::<bool>(), Promise::ALL.len())) {
        let s: PromiseSet = Promise::ALL.iter().zip(&bits).filter(|(_, b)| **b).map(|(p, _)| *p).collect();
        prop_assert_eq!(PromiseSet::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn promise_parse_never_panics(s in "\\PC{0,64}") {
        let _ = PromiseSet::parse(&s);
    }

    #[test]
    fn unveil_display_round_trips(
        perm in 1u8..16,
        parts in proptest::collection::vec("[a-zA-Z0-9_:.é-]{1,12}", 0..6),
    ) {
        let parts: Vec<String> = parts.into_iter().filter(|p| p != "." && p != "..").collect();
        let path = format!("/{}", parts.join("/"));
        let r = UnveilRule { path: path.clone().into(), perm: UnveilPerm::from_bits_truncate(perm) };
        prop_assert_eq!(UnveilRule::parse(&r.to_string()).unwrap(), r.clone());
        // And the parse of a parse is stable (normalization is idempotent).
        let again = UnveilRule::parse(&UnveilRule::parse(&path).unwrap().to_string()).unwrap();
        prop_assert_eq!(again.path, r.path);
    }

    #[test]
    fn unveil_parse_never_panics_and_accepts_only_absolute(s in "\\PC{0,64}") {
        if let Ok(r) = UnveilRule::parse(&s) {
            prop_assert!(r.path.is_absolute());
            prop_assert!(!r.perm.is_empty());
            prop_assert!(r.path.components().all(|c| c != std::path::Component::ParentDir));
        }
    }
}
