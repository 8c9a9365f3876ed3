//! The client session state a backend connection must carry before it runs a statement for
//! that client: system variables (character set, sql_mode, time zone, autocommit, …) and user
//! variables, as literal values read back from the server after the client set them.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Variables to replay, and their fingerprint (0 means "server defaults").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState {
    /// `@@session.name` → SQL literal.
    system: BTreeMap<String, String>,
    /// `@name` → SQL literal.
    user: BTreeMap<String, String>,
    fingerprint: u64,
}

impl SessionState {
    /// Sets a session system variable to an SQL literal.
    pub fn set_system(&mut self, name: &str, literal: String) {
        self.system.insert(name.to_ascii_lowercase(), literal);
        self.refresh();
    }

    /// Sets a user variable to an SQL literal.
    pub fn set_user(&mut self, name: &str, literal: String) {
        self.user.insert(name.to_string(), literal);
        self.refresh();
    }

    /// The literal a session system variable was set to, if the client set it.
    pub fn system_literal(&self, name: &str) -> Option<&str> {
        self.system
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The literal a user variable holds, if the client set it.
    pub fn user_literal(&self, name: &str) -> Option<String> {
        self.user.get(name).cloned()
    }

    /// Identifies this state; equal states have equal fingerprints, defaults have 0.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    fn refresh(&mut self) {
        if self.system.is_empty() && self.user.is_empty() {
            self.fingerprint = 0;
            return;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.system.hash(&mut h);
        self.user.hash(&mut h);
        self.fingerprint = h.finish().clamp(1, super::UNKNOWN_STATE - 1);
    }

    /// One `SET` statement that establishes this state on a fresh connection, if any.
    pub fn to_sql(&self) -> Option<String> {
        if self.fingerprint == 0 {
            return None;
        }
        let mut parts = Vec::with_capacity(self.system.len() + self.user.len());
        // Character sets first: collation_connection must follow character_set_connection.
        let order = |n: &str| match n {
            "character_set_client" | "character_set_connection" | "character_set_results" => 0,
            "collation_connection" => 1,
            _ => 2,
        };
        let mut system: Vec<_> = self.system.iter().collect();
        system.sort_by_key(|(n, _)| order(n));
        for (name, lit) in system {
            parts.push(format!("@@session.{name} = {lit}"));
        }
        for (name, lit) in &self.user {
            parts.push(format!(
                "@{} = {lit}",
                myshard_router::text::quote_ident(name)
            ));
        }
        Some(format!("SET {}", parts.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_state_needs_no_sql() {
        assert_eq!(SessionState::default().to_sql(), None);
        assert_eq!(SessionState::default().fingerprint(), 0);
    }

    #[test]
    fn charset_variables_come_first() {
        let mut s = SessionState::default();
        s.set_system("sql_mode", "'ANSI'".into());
        s.set_system("collation_connection", "'utf8mb4_bin'".into());
        s.set_system("character_set_client", "'utf8mb4'".into());
        s.set_user("x", "1".into());
        assert_eq!(
            s.to_sql().as_deref(),
            Some("SET @@session.character_set_client = 'utf8mb4', @@session.collation_connection = 'utf8mb4_bin', @@session.sql_mode = 'ANSI', @`x` = 1")
        );
    }

    #[test]
    fn equal_states_have_equal_fingerprints() {
        let mut a = SessionState::default();
        let mut b = SessionState::default();
        a.set_system("time_zone", "'+00:00'".into());
        b.set_system("TIME_ZONE", "'+00:00'".into());
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), 0);
    }
}
