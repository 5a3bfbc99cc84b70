//! Property-based fuzzing (proptest) of everything a client's bytes reach before Redis: the
//! purchase body, userIds, sale ids and `Idempotency-Key`s. Each property checks the parser
//! against an independent statement of the SPEC's rule, on random and hostile input.
//!
//! `FUZZ_CASES` sets the cases per property (default 20,000; README, Guarantees, says how long
//! a run took).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashsale::{
    domain::{RequestToken, SaleId, UserId},
    routes::PurchaseRequest,
};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// SPEC: 1–128 of `A–Z a–z 0–9 . _ - @ + :`.
fn valid_user_id(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_@+:|".contains(c))
}

/// SPEC: 1–64 of `A–Z a–z 0–9 _ -`.
fn valid_sale_id(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// Text that is mostly near the rules' edges: allowed characters, a few hostile ones, lengths
/// around the limits.
fn near_the_rules() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._@+:|-]{0,130}",
        "[A-Za-z0-9_-]{60,70}",
        ".{0,40}",
        "[A-Za-z0-9]{0,10}[ \t\r\n\0/\\\\%{}\"'<>;*?\u{202e}é💥][A-Za-z0-9]{0,10}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn user_ids_are_accepted_exactly_by_the_rule(text in near_the_rules()) {
        let parsed = UserId::parse(text.clone());
        prop_assert_eq!(parsed.is_ok(), valid_user_id(&text), "{:?}", text);
        if let Ok(user) = parsed {
            prop_assert_eq!(user.as_str(), text.as_str());
        }
    }

    #[test]
    fn sale_ids_are_accepted_exactly_by_the_rule(text in near_the_rules()) {
        prop_assert_eq!(SaleId::parse(&text).is_ok(), valid_sale_id(&text), "{:?}", text);
    }

    #[test]
    fn idempotency_keys_map_to_stable_tokens_or_are_refused(key in proptest::collection::vec(any::<u8>(), 0..300)) {
        let valid = (1..=255).contains(&key.len()) && key.iter().all(|b| (b'!'..=b'~').contains(b));
        let token = RequestToken::from_idempotency_key(&key);
        prop_assert_eq!(token.is_ok(), valid, "{:?}", key);
        if let Ok(token) = token {
            let again = RequestToken::from_idempotency_key(&key).unwrap();
            prop_assert_eq!(token.as_str(), again.as_str());
        }
    }

    #[test]
    fn any_bytes_as_a_purchase_body_parse_or_fail_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<PurchaseRequest>(&body);
    }

    #[test]
    fn a_json_body_carries_a_user_id_only_when_it_is_valid(user in near_the_rules(), extra in "[a-z]{0,8}") {
        let body = serde_json::json!({ "userId": user, extra.clone(): 1 }).to_string();
        match serde_json::from_str::<PurchaseRequest>(&body) {
            Ok(request) => {
                prop_assert!(valid_user_id(&user), "{:?}", user);
                prop_assert_eq!(request.user_id.map(UserId::into_string), Some(user));
            }
            Err(_) => prop_assert!(!valid_user_id(&user), "{:?} refused", user),
        }
    }
}
