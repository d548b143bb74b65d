//! The README's example is `examples/queue.rs`, word for word, so that the
//! example a reader copies is the one the VM suite runs.

#[test]
fn readme_shows_the_queue_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/queue.rs")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```\n")),
        "README.md no longer shows examples/queue.rs as it is"
    );
}
