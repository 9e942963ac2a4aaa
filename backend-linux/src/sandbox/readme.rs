//! Keeps the README's sandbox tables equal to the data they describe.

#[cfg(test)]
mod tests {
    use pledge_core::policy::{promises, unveils};

    fn readme() -> String {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn readme_promise_table_matches_the_policy_data() {
        let t = promises::markdown_table();
        assert!(
            readme().contains(&t),
            "README.md must contain, verbatim:\n{t}"
        );
    }

    #[test]
    fn readme_unveil_table_matches_the_policy_data() {
        let t = unveils::markdown_table();
        assert!(
            readme().contains(&t),
            "README.md must contain, verbatim:\n{t}"
        );
    }
}
