//! Resolution: which pantry entry or recipe makes each item the target needs.
//!
//! As in ADU's kitchen (spec §5.2), an item in a pantry is used as is (pantry wins), otherwise
//! one of its recipes whose ingredients can all be made. Rather than ADU's recursive search
//! (exponential on hostile cookbooks), the set of makeable items is computed as a fixed point in
//! time linear in the cookbook, recording the order in which items became makeable. Each needed
//! item then takes the first recipe, in file order, whose ingredients all became makeable before
//! it; that order makes the chosen graph acyclic by construction.
//!
//! Items are interned to dense ids and every table is a vector indexed by id, so the memory is a
//! few tens of bytes per recipe and ingredient besides the item table itself (see
//! [`PLAN_BYTES_PER_ENTRY`]).

use std::collections::{HashMap, VecDeque};

use crate::archive::Archive;
use crate::item::Item;
use crate::recipe::Recipe;

/// Dense id of an item within one plan.
pub type ItemId = u32;
const NEVER: u32 = u32::MAX;

/// How one needed item is made.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// Pantry entry number `n` (in the order the pantry was given).
    Pantry(usize),
    Recipe(&'a Recipe),
}

/// Items interned to dense ids.
#[derive(Debug, Default)]
pub struct ItemIds {
    items: Vec<Item>,
    index: HashMap<Item, ItemId>,
}

impl ItemIds {
    fn intern(&mut self, item: &Item) -> ItemId {
        if let Some(&id) = self.index.get(item) {
            return id;
        }
        let id = self.items.len() as ItemId;
        self.items.push(*item);
        self.index.insert(*item, id);
        id
    }

    pub fn get(&self, item: &Item) -> Option<ItemId> {
        self.index.get(item).copied()
    }

    pub fn item(&self, id: ItemId) -> Item {
        self.items.get(id as usize).copied().unwrap_or(Item::EMPTY)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// The chosen way to make the target and everything it needs.
#[derive(Debug)]
pub struct Plan<'a> {
    pub ids: ItemIds,
    /// By item id; `None` for items the target does not need.
    steps: Vec<Option<Step<'a>>>,
    /// The needed items, ingredients before the items made from them.
    pub order: Vec<ItemId>,
    /// Longest ingredient path from the target.
    pub depth: usize,
}

impl<'a> Plan<'a> {
    /// How `item` is made, if the target needs it.
    pub fn step(&self, item: &Item) -> Option<Step<'a>> {
        let id = self.ids.get(item)?;
        self.step_of(id)
    }

    pub fn step_of(&self, id: ItemId) -> Option<Step<'a>> {
        self.steps.get(id as usize).copied().flatten()
    }

    /// Every needed item with its step.
    pub fn needed(&self) -> impl Iterator<Item = (Item, Step<'a>)> + '_ {
        self.order
            .iter()
            .filter_map(|&id| self.step_of(id).map(|s| (self.ids.item(id), s)))
    }
}

/// Why no plan exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolvable {
    /// Items the target (transitively) needs that no pantry entry or recipe makes, up to a few.
    pub missing: Vec<Item>,
}

/// Compressed sparse rows: for each key, a run of values.
struct Rows {
    starts: Vec<u32>,
    values: Vec<u32>,
}

impl Rows {
    /// Builds rows from (key, value) pairs, keeping the pairs' order within each key.
    fn build(keys: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> Rows {
        let mut starts = vec![0u32; keys + 1];
        for (k, _) in pairs.clone() {
            starts[k as usize + 1] += 1;
        }
        for i in 0..keys {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts.clone();
        let mut values = vec![0u32; starts[keys] as usize];
        for (k, v) in pairs {
            let at = &mut fill[k as usize];
            values[*at as usize] = v;
            *at += 1;
        }
        Rows { starts, values }
    }

    fn row(&self, key: u32) -> &[u32] {
        let k = key as usize;
        match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&a), Some(&b)) => &self.values[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Finds a plan for `target`. `pantry` lists the available items; the recipes are those of
/// `archives`, in lookup order (parent first, then nested archives).
pub fn resolve<'a>(
    target: Item,
    pantry: &[Item],
    archives: &[&'a Archive],
) -> Result<Plan<'a>, Unresolvable> {
    // Sized up front: growing by doubling would briefly hold two copies of each table.
    let (mut recipe_count, mut ingredient_count) = (0usize, 0usize);
    for archive in archives {
        for (_, recipe) in archive.recipes() {
            recipe_count += 1;
            recipe.for_each_item(|_| ingredient_count += 1);
        }
    }
    let mut ids = ItemIds {
        items: Vec::with_capacity(recipe_count + pantry.len() + 1),
        index: HashMap::with_capacity(recipe_count + pantry.len() + 1),
    };
    let target_id = ids.intern(&target);
    // Recipes in lookup order: (result id, recipe).
    let mut recipes: Vec<(ItemId, &'a Recipe)> = Vec::with_capacity(recipe_count);
    // Distinct ingredient ids of each recipe, as (recipe index, ingredient id) pairs.
    let mut uses: Vec<(u32, u32)> = Vec::with_capacity(ingredient_count);
    let mut scratch: Vec<ItemId> = Vec::new();
    for archive in archives {
        for (result, recipe) in archive.recipes() {
            let index = recipes.len() as u32;
            recipes.push((ids.intern(result), recipe));
            scratch.clear();
            recipe.for_each_item(|item| scratch.push(ids.intern(item)));
            scratch.sort_unstable();
            scratch.dedup();
            uses.extend(scratch.iter().map(|&ing| (index, ing)));
        }
    }
    let pantry_ids: Vec<ItemId> = pantry.iter().map(|p| ids.intern(p)).collect();
    let n_items = ids.len();

    let ingredients = Rows::build(recipes.len(), uses.iter().copied());
    let waiting = Rows::build(n_items, uses.iter().map(|&(r, i)| (i, r)));
    drop(uses);
    let by_result = Rows::build(
        n_items,
        recipes
            .iter()
            .enumerate()
            .map(|(r, (res, _))| (*res, r as u32)),
    );

    // --- fixed point: when does each item become makeable? ---
    let mut made_at: Vec<u32> = vec![NEVER; n_items];
    let mut pantry_index: Vec<u32> = vec![NEVER; n_items];
    let mut queue: VecDeque<ItemId> = VecDeque::new();
    let mut clock = 0u32;
    let mut make = |id: ItemId, made_at: &mut Vec<u32>, queue: &mut VecDeque<ItemId>| {
        if made_at[id as usize] == NEVER {
            made_at[id as usize] = clock;
            clock += 1;
            queue.push_back(id);
        }
    };
    for (n, (&id, item)) in pantry_ids.iter().zip(pantry).enumerate() {
        if item.is_empty() {
            continue;
        }
        if pantry_index[id as usize] == NEVER {
            pantry_index[id as usize] = n as u32;
        }
        make(id, &mut made_at, &mut queue);
    }
    let empty_id = ids.get(&Item::EMPTY);
    let mut missing: Vec<u32> = Vec::with_capacity(recipes.len());
    for (r, (result, _)) in recipes.iter().enumerate() {
        let row = ingredients.row(r as u32);
        // An empty ingredient can never be made: the recipe waits forever.
        let blocked = empty_id.is_some_and(|e| row.contains(&e));
        let count = row.len() as u32 + u32::from(blocked);
        missing.push(count);
        if count == 0 {
            make(*result, &mut made_at, &mut queue);
        }
    }
    while let Some(id) = queue.pop_front() {
        for &r in waiting.row(id) {
            let m = &mut missing[r as usize];
            *m -= 1;
            if *m == 0 {
                make(recipes[r as usize].0, &mut made_at, &mut queue);
            }
        }
    }
    drop(missing);
    drop(waiting);

    if made_at[target_id as usize] == NEVER {
        return Err(Unresolvable {
            missing: find_missing(target_id, &ids, &made_at, &by_result, &ingredients),
        });
    }

    // --- choose a step for each needed item, from the target down ---
    let mut steps: Vec<Option<Step<'a>>> = vec![None; n_items];
    let mut order: Vec<ItemId> = Vec::new();
    let mut stack = vec![target_id];
    while let Some(id) = stack.pop() {
        let slot = id as usize;
        if steps[slot].is_some() {
            continue;
        }
        order.push(id);
        if pantry_index[slot] != NEVER {
            steps[slot] = Some(Step::Pantry(pantry_index[slot] as usize));
            continue;
        }
        let when = made_at[slot];
        // An item is makeable only through a recipe whose ingredients were all makeable
        // earlier, so one exists.
        let chosen = by_result.row(id).iter().copied().find(|&r| {
            ingredients
                .row(r)
                .iter()
                .all(|&ing| made_at[ing as usize] < when)
        });
        let Some(r) = chosen else {
            return Err(Unresolvable {
                missing: vec![ids.item(id)],
            });
        };
        steps[slot] = Some(Step::Recipe(recipes[r as usize].1));
        stack.extend_from_slice(ingredients.row(r));
    }

    // Ingredients before results: increasing make time.
    order.sort_by_key(|&id| made_at[id as usize]);
    let mut depth_of: Vec<u32> = vec![0; n_items];
    for &id in &order {
        if let Some(Step::Recipe(r)) = steps[id as usize] {
            let mut d = 0;
            r.for_each_item(|ing| {
                if let Some(i) = ids.get(ing) {
                    d = d.max(depth_of[i as usize]);
                }
            });
            depth_of[id as usize] = d + 1;
        }
    }
    let depth = depth_of[target_id as usize] as usize;
    Ok(Plan {
        ids,
        steps,
        order,
        depth,
    })
}

/// The leaves of the target's recipe graph that nothing makes (at most 8), for the error.
fn find_missing(
    target: ItemId,
    ids: &ItemIds,
    made_at: &[u32],
    by_result: &Rows,
    ingredients: &Rows,
) -> Vec<Item> {
    let mut missing = Vec::new();
    let mut seen = vec![false; ids.len()];
    let mut stack = vec![target];
    while let Some(id) = stack.pop() {
        let slot = id as usize;
        if missing.len() >= 8 || seen[slot] || made_at[slot] != NEVER {
            continue;
        }
        seen[slot] = true;
        let producers = by_result.row(id);
        if producers.is_empty() {
            missing.push(ids.item(id));
        }
        for &r in producers {
            stack.extend_from_slice(ingredients.row(r));
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::RecipeSet;

    fn item(s: &str) -> Item {
        Item::of_bytes(s.as_bytes())
    }

    fn archive(recipes: Vec<(Item, Recipe)>) -> Archive {
        Archive {
            offset: 0,
            target: Item::EMPTY,
            source: Item::EMPTY,
            type_names: Vec::new(),
            recipe_sets: recipes
                .into_iter()
                .map(|(result, r)| RecipeSet {
                    result,
                    recipes: vec![r],
                })
                .collect(),
            inline_assets: None,
            remainder: None,
            nested: Vec::new(),
        }
    }

    #[test]
    fn pantry_wins_and_first_usable_recipe_is_chosen() {
        let src = item("source!");
        let a = item("a");
        let ab = item("ab");
        let unknown = item("zz");
        let a_bad = Recipe::Chain(vec![unknown]);
        let a_good = Recipe::Slice {
            offset: 0,
            whole: src,
        };
        let ab_chain = Recipe::Chain(vec![a, a]);
        let arch = archive(vec![(a, a_bad), (a, a_good), (ab, ab_chain)]);
        let plan = resolve(ab, &[src], &[&arch]).unwrap();
        assert!(matches!(
            plan.step(&a),
            Some(Step::Recipe(Recipe::Slice { .. }))
        ));
        assert!(matches!(plan.step(&src), Some(Step::Pantry(0))));
        assert!(plan.step(&unknown).is_none());
        assert_eq!(plan.depth, 2);
        assert_eq!(plan.needed().last().map(|(i, _)| i), Some(ab));
    }

    #[test]
    fn cycles_do_not_hang_and_are_broken_by_order() {
        let src = item("s");
        let x = item("xx");
        let y = item("yy");
        // x <- [y] first, then x <- [src, src]; y <- [x]. Only the second recipe of x works.
        let arch = archive(vec![
            (x, Recipe::Chain(vec![y])),
            (y, Recipe::Chain(vec![x])),
            (x, Recipe::Chain(vec![src, src])),
        ]);
        let plan = resolve(y, &[src], &[&arch]).unwrap();
        assert!(matches!(plan.step(&x), Some(Step::Recipe(Recipe::Chain(p))) if p[0] == src));
        // Without the source nothing resolves, and the missing leaf is named.
        let err = resolve(y, &[], &[&arch]).unwrap_err();
        assert_eq!(err.missing, vec![src]);
    }
}
