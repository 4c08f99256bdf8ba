use super::*;
use crate::command::lookup;

fn user(rules: &str) -> User {
    let mut user = User::new("alice");
    user.apply_all(rules.split(' ')).expect("valid rules");
    user
}

fn spec(name: &str) -> &'static CommandSpec {
    lookup(name.as_bytes()).expect("in the table")
}

#[test]
fn a_new_user_is_off_with_nothing_allowed() {
    let user = User::new("bob");
    assert_eq!(user.describe(), "off resetchannels -@all");
    assert!(!user.accepts(b""));
    assert!(!user.may_run(spec("get"), None));
}

#[test]
fn the_default_user_is_open_unless_a_password_is_required() {
    let open = User::default_user(None);
    assert_eq!(open.describe(), "on nopass ~* &* +@all");
    assert!(open.accepts(b"anything"));
    assert!(open.unrestricted());
    let hash = password_hash(b"s3cret");
    let closed = User::default_user(Some(&hash));
    assert!(closed.accepts(b"s3cret"));
    assert!(!closed.accepts(b"other"));
}

#[test]
fn passwords_are_kept_as_sha256_and_accepted_in_either_form() {
    let hash = password_hash(b"pw");
    assert_eq!(
        hash,
        "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
    );
    let mut alice = user("on >pw");
    assert!(alice.accepts(b"pw"));
    assert!(!alice.accepts(b"pw2"));
    alice.apply(&format!("#{}", password_hash(b"pw2"))).unwrap();
    assert!(alice.accepts(b"pw2"));
    alice.apply("<pw").unwrap();
    assert!(!alice.accepts(b"pw"));
    assert_eq!(alice.apply("<pw"), Err(RuleError::NoSuchPassword));
    alice.apply("off").unwrap();
    assert!(
        !alice.accepts(b"pw2"),
        "a disabled user never authenticates"
    );
    assert_eq!(alice.apply("#abc"), Err(RuleError::BadHash));
    assert_eq!(
        alice.apply(&format!("#{}", hash.to_uppercase())),
        Err(RuleError::BadHash)
    );
}

#[test]
fn nopass_resetpass_and_reset() {
    let mut alice = user("on >pw nopass");
    assert!(alice.accepts(b"whatever"));
    assert!(alice.passwords.is_empty());
    alice.apply("resetpass").unwrap();
    assert!(!alice.accepts(b"whatever"));
    let mut bob = user("on >pw ~* &* +@all");
    bob.apply("reset").unwrap();
    assert_eq!(bob, User::new("alice"));
}

#[test]
fn command_rules_apply_in_order() {
    let alice = user("+@all -@dangerous");
    assert!(alice.may_run(spec("get"), None));
    assert!(!alice.may_run(spec("flushall"), None));
    assert!(!alice.may_run(spec("keys"), None));
    let alice = user("-@all +@read -get");
    assert!(alice.may_run(spec("mget"), None));
    assert!(!alice.may_run(spec("get"), None));
    assert!(!alice.may_run(spec("set"), None));
    let alice = user("+lock -del +@raftlock");
    assert!(alice.may_run(spec("lock"), None));
    assert!(alice.may_run(spec("unlock"), None));
    assert!(!alice.may_run(spec("del"), None));
}

#[test]
fn subcommand_rules_allow_one_subcommand() {
    let alice = user("-config +config|get");
    assert!(alice.may_run(spec("config"), Some(b"GET")));
    assert!(!alice.may_run(spec("config"), Some(b"set")));
    let alice = user("+config|get +config");
    assert_eq!(alice.describe_commands(), "-@all +config");
    let alice = user("+script|load");
    let load = &lookup(b"script").unwrap().subcommands[0];
    assert!(alice.may_run(load, None));
    let flush = &lookup(b"script").unwrap().subcommands[2];
    assert!(!alice.may_run(flush, None));
}

#[test]
fn unknown_commands_categories_and_words_are_refused() {
    let mut alice = User::new("alice");
    assert_eq!(alice.apply("+nosuch"), Err(RuleError::UnknownCommand));
    assert_eq!(alice.apply("+@nosuch"), Err(RuleError::UnknownCommand));
    assert_eq!(alice.apply("foo"), Err(RuleError::Syntax));
    assert_eq!(alice.apply("%X~k"), Err(RuleError::Syntax));
    assert_eq!(alice.apply("(+get)"), Err(RuleError::Selectors));
    // All or nothing.
    let err = alice.apply_all(["on", ">pw", "+nosuch"]).unwrap_err();
    assert_eq!(err.0, "+nosuch");
    assert_eq!(alice, User::new("alice"));
}

#[test]
fn key_patterns_say_read_write_or_both() {
    let alice = user("~lock:* %R~ro:* %W~wo:*");
    assert!(alice.may_read_or_write(b"lock:1", true));
    assert!(alice.may_read_or_write(b"lock:1", false));
    assert!(alice.may_read_or_write(b"ro:1", false));
    assert!(!alice.may_read_or_write(b"ro:1", true));
    assert!(alice.may_read_or_write(b"wo:1", true));
    assert!(!alice.may_read_or_write(b"wo:1", false));
    assert!(!alice.may_read_or_write(b"other", false));
    assert_eq!(alice.describe_keys(), "~lock:* %R~ro:* %W~wo:*");
    let mut alice = alice;
    alice.apply("allkeys").unwrap();
    assert_eq!(alice.describe_keys(), "~*");
    alice.apply("resetkeys").unwrap();
    assert!(!alice.may_read_or_write(b"lock:1", false));
}

#[test]
fn channel_patterns_match_channels_and_psubscribe_patterns_literally() {
    let alice = user("&chan*");
    assert!(alice.may_use_channel(b"chan1", false));
    assert!(!alice.may_use_channel(b"other", false));
    assert!(alice.may_use_channel(b"chan*", true));
    assert!(!alice.may_use_channel(b"chan1*", true));
    let all = user("allchannels");
    assert!(all.may_use_channel(b"x*", true));
    assert_eq!(all.describe_channels(), "&*");
    assert_eq!(alice.describe_channels(), "resetchannels &chan*");
}

#[test]
fn describe_reads_back_as_the_same_user() {
    let alice = user("on >pw ~lock:* %R~ro:* &chan* -@all +lock +get -@dangerous +config|get");
    let mut again = User::new("alice");
    again.apply_all(alice.describe().split(' ')).unwrap();
    assert_eq!(again, alice);
}

#[test]
fn a_pattern_after_all_keys_or_channels_is_refused_as_redis_does() {
    let mut alice = user("allkeys allchannels");
    assert_eq!(alice.apply("~foo"), Err(RuleError::KeyAfterAllKeys));
    assert_eq!(alice.apply("%R~foo"), Err(RuleError::KeyAfterAllKeys));
    assert_eq!(alice.apply("&foo"), Err(RuleError::ChannelAfterAllChannels));
    alice.apply("resetkeys").unwrap();
    alice.apply("~foo").unwrap();
    assert_eq!(
        RuleError::NoSuchPassword.text(),
        "The password you are trying to remove from the user does not exist"
    );
}
