//! The store's waiting-room calls (README, Waiting room): a sale's room and draw as this
//! instance needs them, join or read a place, and resolve pre-queue places in bulk.

use super::{
    keys::SaleKeys,
    scripts::{JoinReply, QueueJoin, QueueRanks},
    Store, StoreError,
};
use crate::domain::{SaleId, UserId};
use fred::{bytes_utils::Str, prelude::*};

/// What an instance keeps of a sale's room: whether it is on, and its draw (the seed stays in
/// the process; it is never logged or served before the start).
#[derive(Clone, PartialEq, Eq)]
pub struct RoomKeys {
    pub on: bool,
    pub seed: String,
    pub commitment: String,
}

impl std::fmt::Debug for RoomKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomKeys")
            .field("on", &self.on)
            .field("commitment", &self.commitment)
            .finish_non_exhaustive()
    }
}

/// At most this many pre-queue places are read in one call.
pub const RANKS_PER_CALL: usize = 1_000;

impl Store {
    /// The sale's room switch and draw (one `HMGET`); off for a sale that does not exist.
    pub async fn room_keys(&self, sale: &SaleId) -> Result<RoomKeys, StoreError> {
        let room = SaleKeys::new(sale).room();
        let fields: Vec<Option<String>> = self
            .command(|client| {
                let room = room.clone();
                async move { client.hmget(room, vec!["rate", "seed", "commitment"]).await }
            })
            .await?;
        let field = |n: usize| fields.get(n).cloned().flatten().unwrap_or_default();
        Ok(RoomKeys {
            on: field(0).parse::<i64>().is_ok_and(|rate| rate > 0),
            seed: field(1),
            commitment: field(2),
        })
    }

    /// Joins `user` to the sale's queue (`join`), or reads their place. `rank_key` and
    /// `commitment` come from the draw the caller holds.
    pub async fn queue_join(
        &self,
        sale: &SaleId,
        user: &UserId,
        rank_key: String,
        commitment: String,
        join: bool,
    ) -> Result<JoinReply, StoreError> {
        self.eval(QueueJoin {
            keys: SaleKeys::new(sale),
            user: Str::from(user.as_str()),
            rank_key,
            commitment,
            join,
        })
        .await
    }

    /// The drawn positions of pre-queue buyers, 0 for one not there; at most
    /// [`RANKS_PER_CALL`] a call.
    pub async fn queue_ranks(
        &self,
        sale: &SaleId,
        users: Vec<String>,
    ) -> Result<Vec<i64>, StoreError> {
        self.eval(QueueRanks {
            keys: SaleKeys::new(sale),
            users,
        })
        .await
    }
}

impl Store {
    /// The pre-queue in draw order: up to `limit` userIds from position `offset + 1`.
    pub async fn draw_page(
        &self,
        sale: &SaleId,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        let key = SaleKeys::new(sale).prequeue();
        let last = offset.saturating_add(limit).saturating_sub(1);
        let members: Vec<String> = self
            .command(|client| {
                let key = key.clone();
                async move {
                    client
                        .zrange(key, offset as i64, last as i64, None, false, None, false)
                        .await
                }
            })
            .await?;
        // A member is '<rankKey>:<userId>', the rank key 64 hex characters.
        members
            .into_iter()
            .map(|member| match member.get(65..) {
                Some(user) if member.as_bytes().get(64) == Some(&b':') => Ok(user.to_owned()),
                _ => Err(StoreError::bad_data("pre-queue member", member)),
            })
            .collect()
    }
}

/// The set of sale ids that have (or had) a waiting room: what start-up checks when an
/// instance has no `WAITING_ROOM_SECRET`. A sale leaves it when it is deleted.
pub const ROOM_SALES: &str = "flashsale:sales:rooms";

impl Store {
    /// Records that a sale has a waiting room.
    pub async fn index_room(&self, sale: &SaleId) -> Result<(), StoreError> {
        self.add_to_set(ROOM_SALES, sale).await
    }

    /// The sales whose waiting room is on now.
    pub async fn sales_with_rooms_on(&self) -> Result<Vec<String>, StoreError> {
        let indexed: Vec<String> = self
            .command(|client| async move { client.smembers(ROOM_SALES).await })
            .await?;
        let mut on = Vec::new();
        for id in indexed {
            let Ok(sale) = SaleId::parse(&id) else {
                continue;
            };
            if self.room_keys(&sale).await?.on {
                on.push(id);
            }
        }
        Ok(on)
    }
}
