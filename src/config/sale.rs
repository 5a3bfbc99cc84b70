//! `SALE_*` and `USER_ATTEMPT_*`: the sale `/api/sale` serves, the sale to create at
//! start-up, and the per-user attempt limit.

use super::{within, ConfigError, Vars};
use crate::{
    domain::{
        CheckoutRules, ProductName, SaleId, SaleSeed, SaleWindow, WaitingRoom, MAX_TOTAL_STOCK,
    },
    store::UserAttemptLimit,
};
use chrono::{DateTime, Duration as ChronoDuration, Utc};

pub(super) fn sale_id(vars: &Vars) -> Result<SaleId, ConfigError> {
    SaleId::parse(vars.sale_id.trim()).map_err(|e| ConfigError::var("SALE_ID", e))
}

pub(super) fn user_attempts(vars: &Vars) -> Result<UserAttemptLimit, ConfigError> {
    Ok(UserAttemptLimit {
        limit: vars.user_attempt_limit,
        window_ms: if vars.user_attempt_limit > 0 {
            within(
                "USER_ATTEMPT_WINDOW_MS",
                vars.user_attempt_window_ms,
                1..=86_400_000,
            )?
        } else {
            vars.user_attempt_window_ms
        },
    })
}

pub(super) fn seed(vars: &Vars, now: DateTime<Utc>) -> Result<Option<SaleSeed>, ConfigError> {
    let Some(total_stock) = vars.sale_total_stock else {
        for (name, value) in [
            ("SALE_PRODUCT_NAME", &vars.sale_product_name),
            ("SALE_START", &vars.sale_start),
            ("SALE_END", &vars.sale_end),
        ] {
            if value.is_some() {
                return Err(ConfigError::var(
                    name,
                    "is set but SALE_TOTAL_STOCK is not (it creates the sale)",
                ));
            }
        }
        return Ok(None);
    };
    let total_stock = within("SALE_TOTAL_STOCK", total_stock, 0..=MAX_TOTAL_STOCK)?;
    let product_name = ProductName::parse(
        vars.sale_product_name
            .as_deref()
            .unwrap_or("Flash sale item"),
    )
    .map_err(|rule| ConfigError::var("SALE_PRODUCT_NAME", rule))?;
    let start = match &vars.sale_start {
        None => now,
        Some(text) => parse_time("SALE_START", text)?,
    };
    let end = match &vars.sale_end {
        None => start + ChronoDuration::hours(1),
        Some(text) => parse_time("SALE_END", text)?,
    };
    let window = SaleWindow::new(start, end)
        .ok_or_else(|| ConfigError::var("SALE_END", "must be after SALE_START"))?;
    Ok(Some(SaleSeed {
        product_name,
        total_stock,
        window,
        checkout: checkout(vars)?,
        waiting_room: room_vars(vars)?.room(window.start())?,
    }))
}

/// `SALE_WAITING_ROOM_*` as given: the room is checked against a sale's start by [`Self::room`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaleRoomVars {
    admit_per_second: u64,
    admission_seconds: u64,
    opens_at: Option<DateTime<Utc>>,
}

impl SaleRoomVars {
    /// The room of a sale starting at `start`; `None` when the rate is 0.
    pub fn room(&self, start: DateTime<Utc>) -> Result<Option<WaitingRoom>, ConfigError> {
        if self.admit_per_second == 0 {
            return Ok(None);
        }
        let start_ms = start.timestamp_millis();
        let opens_ms = self
            .opens_at
            .map_or(start_ms - WaitingRoom::DEFAULT_OPENS_BEFORE_MS, |opens| {
                opens.timestamp_millis()
            });
        WaitingRoom::new(
            self.admit_per_second,
            self.admission_seconds,
            opens_ms,
            start_ms,
        )
        .map(Some)
        .map_err(|(field, rule)| {
            let name = match field {
                "admitPerSecond" => "SALE_WAITING_ROOM_ADMIT_PER_SECOND",
                "admissionSeconds" => "SALE_WAITING_ROOM_ADMISSION_SECONDS",
                _ => "SALE_WAITING_ROOM_OPENS_AT",
            };
            ConfigError::var(name, rule)
        })
    }
}

pub(super) fn room_vars(vars: &Vars) -> Result<SaleRoomVars, ConfigError> {
    let room = SaleRoomVars {
        admit_per_second: vars.sale_waiting_room_admit_per_second,
        admission_seconds: vars.sale_waiting_room_admission_seconds,
        opens_at: vars
            .sale_waiting_room_opens_at
            .as_deref()
            .map(|text| parse_time("SALE_WAITING_ROOM_OPENS_AT", text))
            .transpose()?,
    };
    // The rules that do not depend on the start, checked even when no sale is created here.
    room.room(chrono::DateTime::<Utc>::MAX_UTC)?;
    Ok(room)
}

/// `SALE_HOLD_SECONDS` and `SALE_MAX_PER_BUYER`: the checkout rules of the sale created at
/// start-up (README, Checkout).
pub(super) fn checkout(vars: &Vars) -> Result<CheckoutRules, ConfigError> {
    CheckoutRules::new(vars.sale_hold_seconds, vars.sale_max_per_buyer).map_err(|(field, rule)| {
        let name = if field == "holdSeconds" {
            "SALE_HOLD_SECONDS"
        } else {
            "SALE_MAX_PER_BUYER"
        };
        ConfigError::var(name, rule)
    })
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ConfigError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|err| ConfigError::var(name, format!("not an RFC 3339 time ({err}): {text:?}")))
}
