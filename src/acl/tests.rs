use super::*;
use crate::command::resolve;

fn argv(line: &str) -> Vec<Bytes> {
    line.split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn user(rules: &str) -> User {
    let mut user = User::new("alice");
    user.apply_all(rules.split(' ')).expect("valid rules");
    user
}

fn checked(user: &User, line: &str) -> Result<(), Denied> {
    let argv = argv(line);
    check(user, resolve(&argv).expect("a command"), &argv)
}

fn refusal(user: &User, line: &str) -> String {
    match checked(user, line) {
        Err(denied) => match denied.reply(&user.name) {
            Reply::Error(text) => text,
            other => panic!("{other:?}"),
        },
        Ok(()) => panic!("{line} was allowed"),
    }
}

#[test]
fn a_lock_only_user_may_lock_only_its_keys() {
    let alice = user("on >pw ~lock:* +lock +unlock");
    assert_eq!(checked(&alice, "lock lock:1 me 1000"), Ok(()));
    assert_eq!(checked(&alice, "unlock lock:1 me"), Ok(()));
    assert_eq!(
        refusal(&alice, "lock other me 1000"),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(
        refusal(&alice, "del lock:1"),
        "NOPERM User alice has no permissions to run the 'del' command"
    );
}

#[test]
fn read_only_patterns_refuse_writes() {
    let alice = user("%R~ro:* +@all");
    assert_eq!(checked(&alice, "get ro:1"), Ok(()));
    assert_eq!(
        checked(&alice, "set ro:1 v"),
        Err(Denied::Key("ro:1".into()))
    );
    assert_eq!(checked(&alice, "mget ro:1 x"), Err(Denied::Key("x".into())));
}

#[test]
fn script_keys_are_checked_by_numkeys() {
    let alice = user("~a:* +eval");
    assert_eq!(checked(&alice, "eval return 2 a:1 a:2 b:not-a-key"), Ok(()));
    assert_eq!(
        checked(&alice, "eval return 2 a:1 b:1"),
        Err(Denied::Key("b:1".into()))
    );
}

#[test]
fn subcommand_refusals_name_the_subcommand() {
    let alice = user("+config|get");
    assert_eq!(checked(&alice, "config get maxmemory"), Ok(()));
    assert_eq!(
        refusal(&alice, "config set maxmemory 1"),
        "NOPERM User alice has no permissions to run the 'config|set' command"
    );
    let bob = user("+script|exists");
    assert_eq!(
        refusal(&bob, "script flush"),
        "NOPERM User alice has no permissions to run the 'script|flush' command"
    );
}

#[test]
fn channels_are_checked_for_publish_and_subscribe() {
    let alice = user("+@all &news.*");
    assert_eq!(checked(&alice, "publish news.x m"), Ok(()));
    assert_eq!(
        refusal(&alice, "publish sport m"),
        "NOPERM No permissions to access a channel"
    );
    assert_eq!(
        checked(&alice, "subscribe news.a sport"),
        Err(Denied::Channel("sport".into()))
    );
    assert_eq!(checked(&alice, "psubscribe news.*"), Ok(()));
    assert!(checked(&alice, "psubscribe news.a*").is_err());
    assert_eq!(checked(&alice, "unsubscribe sport"), Ok(()));
}

#[test]
fn dryrun_messages_name_the_user_and_object() {
    let denied = Denied::Key("k".into());
    assert_eq!(
        denied.message("alice", true),
        "User alice has no permissions to access the 'k' key"
    );
    assert_eq!(
        denied.message("alice", false),
        "No permissions to access a key"
    );
}

#[test]
fn users_change_all_or_nothing_and_default_cannot_go() {
    let mut users = Users::default();
    let hash = password_hash(b"req");
    assert!(users.get("default", Some(&hash)).unwrap().accepts(b"req"));
    users.set_user("alice", &["on", ">pw"], None).unwrap();
    let err = users
        .set_user("alice", &["off", "+nosuch"], None)
        .unwrap_err();
    assert_eq!(
        err,
        Reply::error(
            "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
        )
    );
    assert!(users.get("alice", None).unwrap().enabled);
    // Changing default starts from the default as requirepass made it.
    users
        .set_user("default", &["-@dangerous"], Some(&hash))
        .unwrap();
    let default = users.get("default", None).unwrap();
    assert!(default.accepts(b"req"));
    assert_eq!(
        users.delete(&["default"]).unwrap_err(),
        Reply::error("ERR The 'default' user cannot be removed")
    );
    assert_eq!(users.delete(&["alice", "nobody"]), Ok(1));
}

#[test]
fn users_survive_their_image() {
    let mut users = Users::default();
    users
        .set_user("alice", &["on", ">pw", "~lock:*", "+lock"], None)
        .unwrap();
    users.offer_relay_secret("s3");
    users.offer_relay_secret("other");
    let again = Users::from_image(users.to_image()).unwrap();
    assert_eq!(again, users);
    assert_eq!(again.relay_secret(), Some("s3"));
}
