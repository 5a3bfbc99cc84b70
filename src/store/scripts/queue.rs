//! The waiting room's scripts: `queue_join` (join, or read one's place) and `queue_ranks` (the
//! places of many pre-queue buyers at once).

use super::{LuaScript, Reply, ScriptCall, Scripts};
use crate::{
    domain::RoomSnapshot,
    store::{error::StoreError, keys::SaleKeys},
};
use fred::{bytes_utils::Str, prelude::*, types::MultipleKeys};

/// A buyer's place and what it is judged against, as one script call read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePlace {
    /// 1.. ; 0 for a pre-queue buyer before the draw.
    pub position: i64,
    pub total_stock: i64,
    pub remaining: i64,
    pub held: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub redis_now_ms: i64,
    pub room: RoomSnapshot,
}

/// What `lua/queue_join.lua` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinReply {
    /// In the queue (joined now or before).
    Queued(QueuePlace),
    /// Not joined: nothing is left to buy.
    SoldOut(QueuePlace),
    SaleNotFound,
    NoWaitingRoom,
    /// Read only, and the buyer never joined.
    NotInQueue,
    /// Joining opens at this time (Unix ms).
    NotOpen {
        opens_ms: i64,
    },
    SaleEnded,
    /// The seed the caller used is not the sale's (the sale was replaced): read it again.
    StaleDraw,
}

/// `lua/queue_join.lua`.
pub struct QueueJoin {
    pub keys: SaleKeys,
    pub user: Str,
    /// HMAC-SHA256(seed, userId) in hex; '' when the caller has no seed.
    pub rank_key: String,
    pub commitment: String,
    /// Join; `false` only reads.
    pub join: bool,
}

impl ScriptCall for QueueJoin {
    type Output = JoinReply;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.queue_join
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            vec![
                self.keys.config(),
                self.keys.queue(),
                self.keys.prequeue(),
                self.keys.room(),
            ]
            .into(),
            vec![
                Value::String(self.user.clone()),
                Value::from(self.rank_key.as_str()),
                Value::from(self.commitment.as_str()),
                Value::from(if self.join { "1" } else { "0" }),
            ],
        )
    }

    /// `{code}`, or `{code, position, totalStock, remaining, held, startMs, endMs, nowMs, room…}`
    /// (`QUEUE_NOT_OPEN`: `{…, nowMs, opensMs}`).
    fn parse(reply: Value) -> Result<JoinReply, StoreError> {
        let mut reply = Reply::new("queue_join", reply);
        let code = reply.text()?;
        let simple = match &*code {
            "SALE_NOT_FOUND" => Some(JoinReply::SaleNotFound),
            "NO_WAITING_ROOM" => Some(JoinReply::NoWaitingRoom),
            "NOT_IN_QUEUE" => Some(JoinReply::NotInQueue),
            "SALE_ENDED" => Some(JoinReply::SaleEnded),
            "STALE_DRAW" => Some(JoinReply::StaleDraw),
            _ => None,
        };
        if let Some(simple) = simple {
            return Ok(simple);
        }
        let numbers: [i64; 7] = [
            reply.int()?,
            reply.int()?,
            reply.int()?,
            reply.int()?,
            reply.int()?,
            reply.int()?,
            reply.int()?,
        ];
        let [position, total_stock, remaining, held, start_ms, end_ms, redis_now_ms] = numbers;
        if &*code == "QUEUE_NOT_OPEN" {
            return Ok(JoinReply::NotOpen {
                opens_ms: reply.int()?,
            });
        }
        let room = reply
            .room()?
            .ok_or_else(|| Reply::unexpected("queue_join", "no room fields"))?;
        let place = QueuePlace {
            position,
            total_stock,
            remaining,
            held,
            start_ms,
            end_ms,
            redis_now_ms,
            room,
        };
        match &*code {
            "QUEUED" => Ok(JoinReply::Queued(place)),
            "SOLD_OUT" => Ok(JoinReply::SoldOut(place)),
            other => Err(Reply::unexpected("queue_join", other)),
        }
    }
}

/// `lua/queue_ranks.lua`: the positions of pre-queue buyers, 0 for one not there.
pub struct QueueRanks {
    pub keys: SaleKeys,
    pub users: Vec<String>,
}

impl ScriptCall for QueueRanks {
    type Output = Vec<i64>;

    fn script(scripts: &Scripts) -> &LuaScript {
        &scripts.queue_ranks
    }

    fn keys_and_args(&self) -> (MultipleKeys, Vec<Value>) {
        (
            vec![self.keys.queue(), self.keys.prequeue()].into(),
            self.users
                .iter()
                .map(|user| Value::from(user.as_str()))
                .collect(),
        )
    }

    fn parse(reply: Value) -> Result<Vec<i64>, StoreError> {
        reply
            .into_array()
            .iter()
            .map(|value| {
                value
                    .as_i64()
                    .ok_or_else(|| Reply::unexpected("queue_ranks", value))
            })
            .collect()
    }
}
