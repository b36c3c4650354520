//! Rule 1: a relative path is made absolute at store time, so changing the
//! working directory later cannot redirect its deletion. (Its own test
//! binary: the working directory is process-wide.)
#![cfg(not(loom))]

mod common;

use common::*;

#[test]
fn a_later_chdir_cannot_redirect_a_deletion() {
    let f = Fixture::new();
    let a = f.dir.path().join("a");
    let b = f.dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("m.jpg"), b"a").unwrap();
    std::fs::write(b.join("m.jpg"), b"b").unwrap();

    std::env::set_current_dir(&a).unwrap();
    let r = f.store.store("m.jpg", delete(), "s").unwrap();
    assert_eq!(f.store.resolve(&r).unwrap().path(), a.join("m.jpg"));
    std::env::set_current_dir(&b).unwrap();
    f.store.release_all("s");
    f.store.flush();
    assert!(!exists(&a.join("m.jpg")));
    assert!(
        exists(&b.join("m.jpg")),
        "the file in the new cwd is untouched"
    );
}
