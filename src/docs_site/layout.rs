//! Layered (Sugiyama-style) layout of the lineage graph, computed at generate time.
//!
//! The docs viewer never lays out the full graph in the browser: that is what makes
//! `dbt docs` freeze on big projects. Instead [`layered_layout`] runs here, in Rust,
//! in a few milliseconds even for 5,000 nodes and 15,000 edges:
//!
//! 1. **Ranks** — longest-path ranking over a topological order (Kahn), so every
//!    edge goes from a lower rank to a higher one. Roots (e.g. sources, seeds) are
//!    then pulled right to sit just before their first consumer, shortening edges.
//!    Cycles (not expected in a dbt DAG) are broken deterministically.
//! 2. **Ordering** — a few barycenter sweeps (down, then up) reorder the nodes of
//!    each rank by the mean normalized position of their neighbours, which removes
//!    most edge crossings without dummy nodes.
//! 3. **Coordinates** — `x` is the rank times the rank gap; `y` follows each node's
//!    neighbours while keeping at least the row gap between nodes of a rank.
//!
//! The result is fully deterministic: the same input always yields the same layout.

/// Spacing and effort knobs for [`layered_layout`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayoutConfig {
    /// Horizontal distance between the centres of two consecutive ranks.
    pub rank_gap: f64,
    /// Minimal vertical distance between the centres of two nodes of one rank.
    pub row_gap: f64,
    /// Number of barycenter ordering sweeps (alternating down and up).
    pub sweeps: usize,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        Self {
            rank_gap: 280.0,
            row_gap: 44.0,
            sweeps: 4,
        }
    }
}

/// Positions of every node: centre coordinates, rank and order within the rank.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Rank (column) of each node; every DAG edge goes from a lower to a higher rank.
    pub ranks: Vec<u32>,
    /// Index of each node within its rank, top to bottom.
    pub order: Vec<u32>,
    /// Centre x of each node.
    pub x: Vec<f64>,
    /// Centre y of each node (the topmost node sits at 0).
    pub y: Vec<f64>,
    /// Extent of the centres: `max x - min x`.
    pub width: f64,
    /// Extent of the centres: `max y - min y`.
    pub height: f64,
}

/// Adjacency lists built once from the edge list.
struct Graph {
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
}

impl Graph {
    /// Builds adjacency lists, dropping self loops and out-of-range endpoints.
    fn new(n: usize, edges: &[(usize, usize)]) -> Self {
        let mut preds = vec![Vec::new(); n];
        let mut succs = vec![Vec::new(); n];
        for &(from, to) in edges {
            if from != to && from < n && to < n {
                succs[from].push(to);
                preds[to].push(from);
            }
        }
        Self { preds, succs }
    }
}

/// Lays out a directed graph of `n` nodes given as `(from, to)` index pairs.
///
/// Edges with an endpoint `>= n` and self loops are ignored.
pub fn layered_layout(n: usize, edges: &[(usize, usize)], config: &LayoutConfig) -> Layout {
    let graph = Graph::new(n, edges);
    let ranks = assign_ranks(&graph);
    let mut layers = initial_layers(&ranks);
    order_layers(&graph, &ranks, &mut layers, config.sweeps);
    let mut order = vec![0u32; n];
    for layer in &layers {
        for (i, &v) in layer.iter().enumerate() {
            order[v] = to_u32(i);
        }
    }
    let y = assign_y(&graph, &layers, config.row_gap);
    let x: Vec<f64> = ranks
        .iter()
        .map(|&r| f64::from(r) * config.rank_gap)
        .collect();
    let width = extent(&x);
    let height = extent(&y);
    Layout {
        ranks,
        order,
        x,
        y,
        width,
        height,
    }
}

/// Saturating `usize` to `u32` conversion (graphs never get near `u32::MAX` nodes).
fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `max - min` of a slice, 0 for an empty one.
fn extent(values: &[f64]) -> f64 {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() {
        0.0
    } else {
        max - min
    }
}

/// Longest-path ranks over a topological order, then roots pulled towards consumers.
fn assign_ranks(graph: &Graph) -> Vec<u32> {
    let topo = topological_order(graph);
    let n = graph.preds.len();
    let mut ranks = vec![0u32; n];
    let mut position = vec![0usize; n];
    for (i, &v) in topo.iter().enumerate() {
        position[v] = i;
    }
    for &v in &topo {
        // Only predecessors earlier in the order count: later ones are cycle back-edges.
        let rank = graph.preds[v]
            .iter()
            .filter(|&&u| position[u] < position[v])
            .map(|&u| ranks[u] + 1)
            .max()
            .unwrap_or(0);
        ranks[v] = rank;
    }
    pull_roots_right(graph, &mut ranks);
    ranks
}

/// Kahn's algorithm; when only cycles remain, the lowest-index unvisited node is
/// forced in, so the order covers every node and stays deterministic.
fn topological_order(graph: &Graph) -> Vec<usize> {
    let n = graph.preds.len();
    let mut indegree: Vec<usize> = graph.preds.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut queue = std::collections::VecDeque::new();
    let mut order = Vec::with_capacity(n);
    let mut next_unvisited = 0;
    queue.extend((0..n).filter(|&v| indegree[v] == 0));
    while order.len() < n {
        let v = match queue.pop_front() {
            Some(v) => v,
            None => {
                while done[next_unvisited] {
                    next_unvisited += 1;
                }
                next_unvisited
            }
        };
        if done[v] {
            continue;
        }
        done[v] = true;
        order.push(v);
        for &w in &graph.succs[v] {
            indegree[w] = indegree[w].saturating_sub(1);
            if indegree[w] == 0 && !done[w] {
                queue.push_back(w);
            }
        }
    }
    order
}

/// Moves every node without predecessors to one rank before its earliest successor.
fn pull_roots_right(graph: &Graph, ranks: &mut [u32]) {
    for v in 0..ranks.len() {
        if !graph.preds[v].is_empty() {
            continue;
        }
        if let Some(min_succ) = graph.succs[v].iter().map(|&w| ranks[w]).min() {
            ranks[v] = ranks[v].max(min_succ.saturating_sub(1));
        }
    }
}

/// Groups nodes by rank, in index order.
fn initial_layers(ranks: &[u32]) -> Vec<Vec<usize>> {
    let layer_count = ranks.iter().max().map_or(0, |&r| r as usize + 1);
    let mut layers = vec![Vec::new(); layer_count];
    for (v, &r) in ranks.iter().enumerate() {
        layers[r as usize].push(v);
    }
    layers
}

/// Alternating barycenter sweeps: down sweeps use predecessors, up sweeps successors.
fn order_layers(graph: &Graph, ranks: &[u32], layers: &mut [Vec<usize>], sweeps: usize) {
    let mut pos = vec![0.0f64; ranks.len()];
    for layer in layers.iter() {
        normalize_positions(layer, &mut pos);
    }
    for sweep in 0..sweeps {
        let downward = sweep % 2 == 0;
        let layer_ids: Vec<usize> = if downward {
            (1..layers.len()).collect()
        } else {
            (0..layers.len().saturating_sub(1)).rev().collect()
        };
        for r in layer_ids {
            let neighbours = if downward { &graph.preds } else { &graph.succs };
            reorder_layer(&mut layers[r], neighbours, &mut pos);
        }
    }
}

/// Normalized position of each node of a layer, in (0, 1), so layers of very
/// different sizes can be compared.
fn normalize_positions(layer: &[usize], pos: &mut [f64]) {
    let len = layer.len() as f64;
    for (i, &v) in layer.iter().enumerate() {
        pos[v] = (i as f64 + 0.5) / len;
    }
}

/// Sorts one layer by the barycenter of its neighbours (nodes without neighbours
/// keep their current position), ties broken by the current position.
fn reorder_layer(layer: &mut [usize], neighbours: &[Vec<usize>], pos: &mut [f64]) {
    let mut keyed: Vec<(f64, f64, usize)> = layer
        .iter()
        .map(|&v| {
            let adj = &neighbours[v];
            let bary = if adj.is_empty() {
                pos[v]
            } else {
                adj.iter().map(|&u| pos[u]).sum::<f64>() / adj.len() as f64
            };
            (bary, pos[v], v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for (slot, &(_, _, v)) in layer.iter_mut().zip(&keyed) {
        *slot = v;
    }
    normalize_positions(layer, pos);
}

/// Vertical coordinates: the first layer is packed; each later layer follows the
/// mean y of its predecessors, then an upward pass lets nodes follow successors.
fn assign_y(graph: &Graph, layers: &[Vec<usize>], gap: f64) -> Vec<f64> {
    let n = graph.preds.len();
    let mut y = vec![0.0f64; n];
    if let Some(first) = layers.first() {
        for (i, &v) in first.iter().enumerate() {
            y[v] = i as f64 * gap;
        }
    }
    for layer in layers.iter().skip(1) {
        place_layer(layer, &graph.preds, &mut y, gap);
    }
    for layer in layers.iter().rev().skip(1) {
        place_layer(layer, &graph.succs, &mut y, gap);
    }
    let min = y.iter().copied().fold(f64::INFINITY, f64::min);
    if min.is_finite() {
        for value in &mut y {
            *value -= min;
        }
    }
    y
}

/// Places one layer near the mean y of the given neighbours with at least `gap`
/// between consecutive nodes: a forward pass pushes nodes down, a backward pass
/// pushes them up, and the average of both keeps the spacing and the balance.
fn place_layer(layer: &[usize], neighbours: &[Vec<usize>], y: &mut [f64], gap: f64) {
    if layer.is_empty() {
        return;
    }
    let desired = desired_positions(layer, neighbours, y, gap);
    let len = layer.len();
    let mut down = desired.clone();
    for i in 1..len {
        down[i] = down[i].max(down[i - 1] + gap);
    }
    let mut up = desired;
    for i in (0..len - 1).rev() {
        up[i] = up[i].min(up[i + 1] - gap);
    }
    for (i, &v) in layer.iter().enumerate() {
        y[v] = (down[i] + up[i]) / 2.0;
    }
}

/// Mean neighbour y for each node of a layer; nodes without neighbours sit one gap
/// below the previous node's wish (or keep their own y for the first node).
fn desired_positions(layer: &[usize], neighbours: &[Vec<usize>], y: &[f64], gap: f64) -> Vec<f64> {
    let mut desired = Vec::with_capacity(layer.len());
    for (i, &v) in layer.iter().enumerate() {
        let adj = &neighbours[v];
        let wish = if !adj.is_empty() {
            adj.iter().map(|&u| y[u]).sum::<f64>() / adj.len() as f64
        } else if i > 0 {
            desired[i - 1] + gap
        } else {
            y[v]
        };
        desired.push(wish);
    }
    desired
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Small deterministic pseudo-random generator (no `rand` dependency).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % bound as u64) as usize
        }
    }

    /// A random DAG: every edge goes from a lower to a higher index.
    fn random_dag(n: usize, m: usize, seed: u64) -> Vec<(usize, usize)> {
        let mut rng = Lcg(seed);
        let mut edges = Vec::with_capacity(m);
        while edges.len() < m {
            let a = rng.next(n);
            let b = rng.next(n);
            if a != b {
                edges.push((a.min(b), a.max(b)));
            }
        }
        edges
    }

    #[test]
    fn every_edge_goes_from_lower_to_higher_rank() {
        let edges = random_dag(800, 2_400, 7);
        let layout = layered_layout(800, &edges, &LayoutConfig::default());
        for &(a, b) in &edges {
            assert!(layout.ranks[a] < layout.ranks[b], "edge {a}->{b}");
            assert!(layout.x[a] < layout.x[b]);
        }
    }

    #[test]
    fn ranks_are_longest_paths() {
        // a -> b -> c, a -> c, d -> c: c sits after b, d is pulled next to c.
        let edges = [(0, 1), (1, 2), (0, 2), (3, 2)];
        let layout = layered_layout(4, &edges, &LayoutConfig::default());
        assert_eq!(layout.ranks, vec![0, 1, 2, 1]);
    }

    #[test]
    fn layout_is_deterministic() {
        let edges = random_dag(1_000, 3_000, 42);
        let config = LayoutConfig::default();
        let first = layered_layout(1_000, &edges, &config);
        let second = layered_layout(1_000, &edges, &config);
        assert_eq!(first, second);
    }

    #[test]
    fn nodes_of_a_rank_never_overlap() {
        let edges = random_dag(600, 1_500, 3);
        let config = LayoutConfig::default();
        let layout = layered_layout(600, &edges, &config);
        let mut by_rank: Vec<Vec<(u32, f64)>> = Vec::new();
        for v in 0..600 {
            let r = layout.ranks[v] as usize;
            if by_rank.len() <= r {
                by_rank.resize(r + 1, Vec::new());
            }
            by_rank[r].push((layout.order[v], layout.y[v]));
        }
        for layer in &mut by_rank {
            layer.sort_by_key(|&(order, _)| order);
            for pair in layer.windows(2) {
                assert!(pair[1].1 - pair[0].1 >= config.row_gap - 1e-6);
            }
        }
        assert!(layout.y.iter().all(|&y| y >= 0.0));
    }

    #[test]
    fn barycenter_sweeps_untangle_a_crossing() {
        // Two chains whose middle nodes start crossed: 0->3, 1->2, 2->4, 3->5.
        let edges = [(0, 3), (1, 2), (3, 4), (2, 5)];
        let layout = layered_layout(6, &edges, &LayoutConfig::default());
        assert_eq!(
            layout.order[0] < layout.order[1],
            layout.order[3] < layout.order[2]
        );
        assert_eq!(
            layout.order[3] < layout.order[2],
            layout.order[4] < layout.order[5]
        );
    }

    #[test]
    fn cycles_and_bad_edges_do_not_hang_or_panic() {
        let edges = [(0, 1), (1, 2), (2, 0), (2, 2), (5, 99)];
        let layout = layered_layout(6, &edges, &LayoutConfig::default());
        assert_eq!(layout.ranks.len(), 6);
        assert!(layout.x.iter().chain(&layout.y).all(|v| v.is_finite()));
        let empty = layered_layout(0, &[], &LayoutConfig::default());
        assert_eq!((empty.width, empty.height), (0.0, 0.0));
    }

    #[test]
    fn lays_out_5000_nodes_and_15000_edges_quickly() {
        let edges = random_dag(5_000, 15_000, 11);
        let start = Instant::now();
        let layout = layered_layout(5_000, &edges, &LayoutConfig::default());
        let elapsed = start.elapsed();
        println!("layered_layout: 5000 nodes / 15000 edges in {elapsed:?}");
        assert_eq!(layout.x.len(), 5_000);
        // Loose bound: milliseconds in release, well under this even unoptimized.
        assert!(elapsed.as_secs_f64() < 2.0, "layout took {elapsed:?}");
    }
}
