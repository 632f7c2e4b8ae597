//! Resolution: which pantry entry or recipe makes each item the target needs.
//!
//! As in ADU's kitchen (spec §5.2), an item in a pantry is used as is (pantry wins), otherwise
//! one of its recipes whose ingredients can all be made. Rather than ADU's recursive search
//! (exponential on hostile cookbooks), the set of makeable items is computed as a fixed point in
//! time linear in the cookbook, recording the order in which items became makeable. Each needed
//! item then takes the first recipe, in file order, whose ingredients all became makeable before
//! it; that order makes the chosen graph acyclic by construction.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::item::Item;
use crate::recipe::Recipe;

/// How one needed item is made.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Pantry entry number `n` (in the order the pantry was given).
    Pantry(usize),
    Recipe(&'a Recipe),
}

/// The chosen way to make the target and everything it needs.
#[derive(Debug)]
pub struct Plan<'a> {
    pub steps: HashMap<Item, Step<'a>>,
    /// The needed items, ingredients before the items made from them.
    pub order: Vec<Item>,
    /// Longest ingredient path from the target.
    pub depth: usize,
}

/// Why no plan exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolvable {
    /// Items the target (transitively) needs that no pantry entry or recipe makes, up to a few.
    pub missing: Vec<Item>,
}

/// Finds a plan for `target`. `pantry` lists the available items; `recipes` every (result,
/// recipe) in lookup order (parent archive first, then nested ones).
pub fn resolve<'a>(
    target: Item,
    pantry: &[Item],
    recipes: &[(Item, &'a Recipe)],
) -> Result<Plan<'a>, Unresolvable> {
    // --- fixed point: when does each item become makeable? ---
    let mut made_at: HashMap<Item, u64> = HashMap::new();
    let mut pantry_index: HashMap<Item, usize> = HashMap::new();
    let mut queue: VecDeque<Item> = VecDeque::new();
    let mut clock = 0u64;
    for (i, item) in pantry.iter().enumerate() {
        if item.is_empty() {
            continue;
        }
        pantry_index.entry(*item).or_insert(i);
        if let std::collections::hash_map::Entry::Vacant(e) = made_at.entry(*item) {
            e.insert(clock);
            clock += 1;
            queue.push_back(*item);
        }
    }
    // For each recipe, how many distinct ingredients are not yet makeable; for each item, the
    // recipes waiting on it.
    let mut missing: Vec<usize> = Vec::with_capacity(recipes.len());
    let mut waiting: HashMap<Item, Vec<usize>> = HashMap::new();
    let mut by_result: HashMap<Item, Vec<usize>> = HashMap::new();
    for (index, (result, recipe)) in recipes.iter().enumerate() {
        by_result.entry(*result).or_default().push(index);
        let mut distinct = HashSet::new();
        recipe.for_each_item(|item| {
            distinct.insert(*item);
        });
        let mut count = 0;
        for item in distinct {
            if item.is_empty() {
                // Never makeable: keep the recipe waiting forever.
                count += 1;
                continue;
            }
            count += 1;
            waiting.entry(item).or_default().push(index);
        }
        missing.push(count);
        if count == 0 {
            if let std::collections::hash_map::Entry::Vacant(e) = made_at.entry(*result) {
                e.insert(clock);
                clock += 1;
                queue.push_back(*result);
            }
        }
    }
    while let Some(item) = queue.pop_front() {
        let Some(users) = waiting.get(&item) else {
            continue;
        };
        for &index in users {
            missing[index] -= 1;
            if missing[index] == 0 {
                let result = recipes[index].0;
                if let std::collections::hash_map::Entry::Vacant(e) = made_at.entry(result) {
                    e.insert(clock);
                    clock += 1;
                    queue.push_back(result);
                }
            }
        }
    }

    if !made_at.contains_key(&target) {
        return Err(Unresolvable {
            missing: find_missing(target, &made_at, &by_result, recipes),
        });
    }

    // --- choose a step for each needed item, from the target down ---
    let mut steps: HashMap<Item, Step<'a>> = HashMap::new();
    let mut stack = vec![target];
    while let Some(item) = stack.pop() {
        if steps.contains_key(&item) {
            continue;
        }
        if let Some(&n) = pantry_index.get(&item) {
            steps.insert(item, Step::Pantry(n));
            continue;
        }
        let when = made_at.get(&item).copied().unwrap_or(u64::MAX);
        let chosen = by_result.get(&item).and_then(|candidates| {
            candidates.iter().find(|&&index| {
                let mut earlier = true;
                recipes[index].1.for_each_item(|ing| {
                    earlier &= made_at.get(ing).is_some_and(|&t| t < when);
                });
                earlier
            })
        });
        // An item is makeable only through a recipe whose ingredients were all makeable
        // earlier, so one exists; a missing one would be a bug in the fixed point above.
        let Some(&index) = chosen else {
            return Err(Unresolvable {
                missing: vec![item],
            });
        };
        let recipe = recipes[index].1;
        steps.insert(item, Step::Recipe(recipe));
        recipe.for_each_item(|ing| stack.push(*ing));
    }

    // Ingredients before results: increasing make time.
    let mut order: Vec<Item> = steps.keys().copied().collect();
    order.sort_by_key(|item| made_at.get(item).copied().unwrap_or(u64::MAX));
    let mut depth_of: HashMap<Item, usize> = HashMap::new();
    for item in &order {
        let depth = match steps.get(item) {
            Some(Step::Recipe(r)) => {
                let mut d = 0;
                r.for_each_item(|ing| d = d.max(depth_of.get(ing).copied().unwrap_or(0)));
                d + 1
            }
            _ => 0,
        };
        depth_of.insert(*item, depth);
    }
    let depth = depth_of.get(&target).copied().unwrap_or(0);
    Ok(Plan {
        steps,
        order,
        depth,
    })
}

/// The leaves of the target's recipe graph that nothing makes (at most 8), for the error.
fn find_missing(
    target: Item,
    made_at: &HashMap<Item, u64>,
    by_result: &HashMap<Item, Vec<usize>>,
    recipes: &[(Item, &Recipe)],
) -> Vec<Item> {
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![target];
    while let Some(item) = stack.pop() {
        if missing.len() >= 8 || !seen.insert(item) || made_at.contains_key(&item) {
            continue;
        }
        match by_result.get(&item) {
            None => missing.push(item),
            Some(candidates) => {
                for &index in candidates {
                    recipes[index].1.for_each_item(|ing| stack.push(*ing));
                }
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(s: &str) -> Item {
        Item::of_bytes(s.as_bytes())
    }

    #[test]
    fn pantry_wins_and_first_usable_recipe_is_chosen() {
        let src = item("source!");
        let a = item("a");
        let ab = item("ab");
        let unknown = item("zz");
        let r_bad = Recipe::Chain(vec![unknown]);
        let r_good = Recipe::Slice {
            offset: 0,
            whole: src,
        };
        let r_chain = Recipe::Chain(vec![a, a]);
        let recipes = vec![(a, &r_bad), (a, &r_good), (ab, &r_chain)];
        let plan = resolve(ab, &[src], &recipes).unwrap();
        assert!(matches!(plan.steps[&a], Step::Recipe(Recipe::Slice { .. })));
        assert!(matches!(plan.steps[&src], Step::Pantry(0)));
        assert_eq!(plan.depth, 2);
        assert_eq!(plan.order.last(), Some(&ab));
    }

    #[test]
    fn cycles_do_not_hang_and_are_broken_by_order() {
        let src = item("s");
        let x = item("xx");
        let y = item("yy");
        // x <- [y] first, then x <- slice(src); y <- [x]. Only the second recipe of x works.
        let x_from_y = Recipe::Chain(vec![y]);
        let y_from_x = Recipe::Chain(vec![x]);
        let x_from_src = Recipe::Chain(vec![src, src]);
        let recipes = vec![(x, &x_from_y), (y, &y_from_x), (x, &x_from_src)];
        let plan = resolve(y, &[src], &recipes).unwrap();
        assert!(matches!(plan.steps[&x], Step::Recipe(Recipe::Chain(p)) if p[0] == src));
        // Without the source nothing resolves, and the missing leaf is named.
        let err = resolve(y, &[], &recipes).unwrap_err();
        assert_eq!(err.missing, vec![src]);
    }
}
