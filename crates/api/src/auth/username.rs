//! Username and password rules, checked before anything touches the store.

/// Names that would be confusing or could impersonate the platform.
const RESERVED: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "system",
    "support",
    "help",
    "api",
    "quicktok",
    "moderator",
    "mod",
    "staff",
    "official",
    "null",
    "undefined",
    "me",
    "settings",
    "login",
    "logout",
    "register",
    "signup",
    "static",
    "assets",
];

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
/// Long passwords cost hashing time for nothing; 128 characters is ample for passphrases.
pub const PASSWORD_MAX: usize = 128;

/// Normalises and checks a username: lower-cased; 3-32 characters of `a-z`, `0-9`, `_` and
/// `.`; starting with a letter; no `..` or trailing `.`; not reserved.
pub fn normalize_username(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_ascii_lowercase();
    let len = name.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(format!("username must be {USERNAME_MIN} to {USERNAME_MAX} characters"));
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.') {
        return Err("username may contain only letters a-z, digits, '_' and '.'".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("username must start with a letter".into());
    }
    if name.contains("..") || name.ends_with('.') {
        return Err("username may not contain '..' or end with '.'".into());
    }
    if RESERVED.contains(&name.as_str()) {
        return Err("this username is reserved".into());
    }
    Ok(name)
}

/// Checks a new password's length (in characters, so non-ASCII passphrases are fine).
pub fn check_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < PASSWORD_MIN {
        return Err(format!("password must be at least {PASSWORD_MIN} characters"));
    }
    if len > PASSWORD_MAX {
        return Err(format!("password must be at most {PASSWORD_MAX} characters"));
    }
    if password.chars().any(char::is_control) {
        return Err("password may not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(normalize_username("  Ana_99 ").unwrap(), "ana_99");
        assert_eq!(normalize_username("li.wei").unwrap(), "li.wei");
        for bad in [
            "ab",
            "a".repeat(33).as_str(),
            "9lives",
            "_x_",
            "ana!",
            "ana bob",
            "ana..b",
            "ana.",
            "admin",
            "ADMIN",
            "名字名字",
            "ana\u{0}",
            "",
        ] {
            assert!(normalize_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords() {
        assert!(check_password("correct horse").is_ok());
        assert!(check_password("密码密码密码密码").is_ok());
        assert!(check_password("short").is_err());
        assert!(check_password(&"x".repeat(129)).is_err());
        assert!(check_password("abc\ndefghij").is_err());
    }
}
