//! `UserId`: 1–128 characters from `A–Z a–z 0–9 . _ - @ + : |` (README, API), so e-mail
//! addresses and identity providers' subjects (`auth0|64f1c2…`, `google-oauth2|1043…`) fit.

use serde::Deserialize;
use std::fmt;

pub const MAX_USER_ID_LEN: usize = 128;

/// A buyer's id, validated. It is passed to scripts as ARGV and used in a key suffix, never
/// spliced into script text; the character set also keeps it free of `{`/`}` hash-tag braces.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(value: String) -> Result<Self, String> {
        if value.is_empty() {
            return Err("userId must not be empty".to_owned());
        }
        if value.len() > MAX_USER_ID_LEN {
            return Err(format!(
                "userId must be at most {MAX_USER_ID_LEN} characters"
            ));
        }
        if !value.bytes().all(is_allowed) {
            return Err("userId may contain only letters, digits and . _ - @ + : |".to_owned());
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// `USER_ID_CASE`: whether `Bob@Example.com` and `bob@example.com` are one buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserIdCase {
    /// Ids are compared as written (the default: ids from a shop's database usually are).
    #[default]
    Sensitive,
    /// Ids are lower-cased before anything else sees them (e-mail addresses typed by people).
    Insensitive,
}

impl UserIdCase {
    pub fn apply(self, user: UserId) -> UserId {
        match self {
            UserIdCase::Sensitive => user,
            // The character set is ASCII, so ASCII lower-casing is all there is.
            UserIdCase::Insensitive => UserId(user.0.to_ascii_lowercase()),
        }
    }
}

fn is_allowed(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-' | b'@' | b'+' | b':' | b'|')
}

impl TryFrom<String> for UserId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insensitive_case_makes_one_buyer_of_two_spellings() {
        let a = UserId::parse("Bob@Example.com".into()).unwrap();
        let b = UserId::parse("bob@example.com".into()).unwrap();
        assert_ne!(UserIdCase::Sensitive.apply(a.clone()), b);
        assert_eq!(UserIdCase::Insensitive.apply(a), b);
    }

    #[test]
    fn emails_and_plain_ids_are_accepted() {
        for id in [
            "u1",
            "jane.doe+sale@example.com",
            "tenant:42",
            "A_b-C",
            &"x".repeat(128),
        ] {
            assert!(UserId::parse(id.to_owned()).is_ok(), "{id}");
        }
    }

    /// The `sub` each identity provider documents, as a trusted buyer's id.
    #[test]
    fn identity_providers_subjects_are_accepted() {
        for (provider, sub) in [
            ("Auth0", "auth0|64f1c2a3b4c5d6e7f8a9b0c1"),
            (
                "Auth0, a social connection",
                "google-oauth2|104365284718245813612",
            ),
            ("Amazon Cognito", "9f1c3f2e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"),
            ("Firebase Auth", "Xk2v9Qm3R7bTz1LpA8dWc5Ne0Hs2"),
            ("Okta", "00u1abcd2EFGH3ijk4l5"),
            (
                "Microsoft Entra ID",
                "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            ),
            ("Clerk", "user_2NNEqL2nrIRdJ194ndJqAHwEfxC"),
            ("Keycloak", "f3b9c1d2-7a4e-4f0b-9c8d-1e2f3a4b5c6d"),
        ] {
            assert!(UserId::parse(sub.to_owned()).is_ok(), "{provider}: {sub}");
        }
    }

    #[test]
    fn empty_long_and_hostile_ids_are_rejected() {
        for id in [
            "",
            &"x".repeat(129),
            "a b",
            "a{b}",
            "é",
            "a\nb",
            "a/b",
            "a'--",
            "\0",
            "a\"b",
        ] {
            assert!(UserId::parse(id.to_owned()).is_err(), "{id:?}");
        }
    }
}
