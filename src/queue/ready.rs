//! The keys that could be sent now, in dispatch order, and which shares have requests under
//! way. With batching (one request per share at a time) it also counts the shares that could
//! start a request now, so waking workers stays O(1) per write however many keys wait.

use std::collections::BTreeMap;
use std::sync::Arc;

use foldhash::HashMap;
use foldhash::HashMapExt;

#[derive(Debug)]
pub struct Ready {
    /// Ready keys with their share's session, by position (the order of first unsent writes).
    by_position: BTreeMap<u64, (Arc<str>, Arc<str>)>,
    /// Contents under way, per session.
    flights: HashMap<Arc<str>, usize>,
    /// With batching: ready keys per session, and how many sessions have some and nothing under
    /// way.
    per_share: Option<HashMap<Arc<str>, usize>>,
    open: usize,
}

impl Ready {
    pub fn new(batching: bool) -> Ready {
        Ready {
            by_position: BTreeMap::new(),
            flights: HashMap::new(),
            per_share: batching.then(HashMap::new),
            open: 0,
        }
    }

    /// Makes `key` ready at `position` (again: a no-op).
    pub fn insert(&mut self, position: u64, key: Arc<str>, session: Arc<str>) {
        if let Some((held, _)) = self.by_position.get(&position) {
            debug_assert_eq!(*held, key, "two ready keys at one position");
            return;
        }
        if let Some(per_share) = &mut self.per_share {
            let n = per_share.entry(session.clone()).or_insert(0);
            *n += 1;
            if *n == 1 && !self.flights.contains_key(&session) {
                self.open += 1;
            }
        }
        self.by_position.insert(position, (key, session));
    }

    /// The position of the first ready key.
    pub fn first_position(&self) -> Option<u64> {
        self.by_position.first_key_value().map(|(p, _)| *p)
    }

    /// Takes the key at `position` out, if it is ready.
    pub fn remove(&mut self, position: u64) -> Option<Arc<str>> {
        let (key, session) = self.by_position.remove(&position)?;
        self.forget_one(&session);
        Some(key)
    }

    fn forget_one(&mut self, session: &Arc<str>) {
        let Some(per_share) = &mut self.per_share else {
            return;
        };
        let n = per_share.get_mut(session).expect("counted");
        *n -= 1;
        if *n == 0 {
            per_share.remove(session);
            if !self.flights.contains_key(session) {
                self.open -= 1;
            }
        }
    }

    /// The first ready key (v1 order).
    pub fn pop_first(&mut self) -> Option<(u64, Arc<str>)> {
        let (position, (key, session)) = self.by_position.pop_first()?;
        self.forget_one(&session);
        Some((position, key))
    }

    /// The session of the first ready key whose share has nothing under way.
    pub fn first_open_share(&self) -> Option<Arc<str>> {
        if self.open == 0 {
            return None;
        }
        self.by_position
            .values()
            .find(|(_, s)| !self.flights.contains_key(s))
            .map(|(_, s)| s.clone())
    }

    /// The ready keys of `session` with their positions, in order.
    pub fn of_share(&self, session: &str) -> Vec<(u64, Arc<str>)> {
        self.by_position
            .iter()
            .filter(|(_, (_, s))| &**s == session)
            .map(|(p, (k, _))| (*p, k.clone()))
            .collect()
    }

    #[cfg(test)]
    pub fn get(&self, position: u64) -> Option<&Arc<str>> {
        self.by_position.get(&position).map(|(k, _)| k)
    }

    /// A content of `session` goes under way.
    pub fn fly(&mut self, session: &Arc<str>) {
        let n = self.flights.entry(session.clone()).or_insert(0);
        *n += 1;
        if *n == 1
            && self
                .per_share
                .as_ref()
                .is_some_and(|p| p.contains_key(session))
        {
            self.open -= 1;
        }
    }

    /// A content of `session` is no longer under way.
    pub fn land(&mut self, session: &Arc<str>) {
        let Some(n) = self.flights.get_mut(session) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.flights.remove(session);
            if self
                .per_share
                .as_ref()
                .is_some_and(|p| p.contains_key(session))
            {
                self.open += 1;
            }
        }
    }

    pub fn in_flight_of(&self, session: &str) -> usize {
        self.flights.get(session).copied().unwrap_or(0)
    }

    /// Sessions with contents under way.
    pub fn shares_in_flight(&self) -> usize {
        self.flights.len()
    }

    /// Contents under way, over all sessions.
    #[cfg(test)]
    pub fn contents_in_flight(&self) -> usize {
        self.flights.values().sum()
    }

    /// With batching: shares that could start a request now; otherwise the ready keys.
    pub fn startable(&self) -> usize {
        match self.per_share {
            Some(_) => self.open,
            None => self.by_position.len(),
        }
    }

    /// Recounts `open` (tests only).
    #[cfg(test)]
    pub fn check(&self) {
        if let Some(per_share) = &self.per_share {
            let open = per_share
                .keys()
                .filter(|s| !self.flights.contains_key(*s))
                .count();
            assert_eq!(open, self.open, "open shares miscounted");
            let total: usize = per_share.values().sum();
            assert_eq!(total, self.by_position.len());
        }
    }
}
