//! Oversell: one unit, 50 buyers (distinct users) released at once. Exactly one order may win.

use crate::outcome::ScenarioResult;

use super::{Tally, Target, all_at_once};

/// Concurrent buyers.
const BUYERS: usize = 50;

/// PASS iff exactly one 201, every other answer 409 INSUFFICIENT_STOCK (or LOCK_CONFLICT, counted
/// apart), and the stock ends at 0.
pub async fn run(target: &Target) -> anyhow::Result<ScenarioResult> {
    let mut result = ScenarioResult::pass("oversell", &target.label);
    let product = target.api.create_product("oversell", 1).await?;
    let answers = all_at_once(BUYERS, |n| {
        let api = target.api.clone();
        let user = api.user(&format!("oversell-{n}"));
        let product = product.clone();
        async move { api.place_order(&user, "oversell", &product, 1).await }
    })
    .await;
    let mut tally = Tally::default();
    answers.iter().for_each(|answer| tally.count(answer));
    let stock = target.api.stock(&product).await?;

    result.put("buyers", BUYERS as u64);
    tally.put_into(&mut result);
    result.put("final_stock", stock);
    result.check(
        tally.created == 1,
        format!("{} orders won one unit", tally.created),
    );
    result.check(
        tally.insufficient + tally.lock_conflict == BUYERS as u64 - 1,
        format!(
            "{} answers were neither the one 201 nor a 409 ({:?})",
            BUYERS as u64 - tally.created - tally.insufficient - tally.lock_conflict,
            tally.samples
        ),
    );
    result.check(stock == 0, format!("stock ended at {stock}, not 0"));
    Ok(result)
}
