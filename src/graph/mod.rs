//! The DAG of a project's nodes (petgraph), cycle reports, and node selection.

pub mod select;
pub mod selectors;

use std::collections::{BTreeMap, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::project::node::Node;

/// Edges point from a parent to the child that depends on it.
#[derive(Debug, Default, Clone)]
pub struct Graph {
    dag: DiGraph<String, ()>,
    index: HashMap<String, NodeIndex>,
}

impl Graph {
    /// Build from the nodes' `depends_on.nodes`; unknown parents are ignored
    /// (they were reported when refs were resolved).
    pub fn build(nodes: &BTreeMap<String, Node>) -> Graph {
        let mut g = Graph {
            dag: DiGraph::with_capacity(nodes.len(), nodes.len() * 2),
            index: HashMap::with_capacity(nodes.len()),
        };
        // Nodes are added in id order, so index order is id order (see `topo_order`).
        for id in nodes.keys() {
            let ix = g.dag.add_node(id.clone());
            g.index.insert(id.clone(), ix);
        }
        for (child, node) in nodes.values().enumerate() {
            let child = NodeIndex::new(child);
            let mut parents: Vec<NodeIndex> = node
                .depends_on
                .nodes
                .iter()
                .filter_map(|p| g.index.get(p).copied())
                .collect();
            parents.sort_unstable();
            parents.dedup();
            for p in parents {
                g.dag.add_edge(p, child, ());
            }
        }
        g
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.dag.node_weights().map(String::as_str)
    }

    pub fn parents(&self, id: &str) -> Vec<&str> {
        self.neighbors(id, Direction::Incoming)
    }

    pub fn children(&self, id: &str) -> Vec<&str> {
        self.neighbors(id, Direction::Outgoing)
    }

    fn neighbors(&self, id: &str, dir: Direction) -> Vec<&str> {
        let Some(&ix) = self.index.get(id) else {
            return Vec::new();
        };
        let mut out: Vec<&str> = self
            .dag
            .neighbors_directed(ix, dir)
            .map(|n| self.dag[n].as_str())
            .collect();
        out.sort_unstable();
        out
    }

    /// Ancestors (parents, their parents, …) up to `depth` generations (None: all).
    pub fn ancestors(&self, id: &str, depth: Option<usize>) -> Vec<&str> {
        self.walk(id, Direction::Incoming, depth)
    }

    /// Descendants up to `depth` generations (None: all).
    pub fn descendants(&self, id: &str, depth: Option<usize>) -> Vec<&str> {
        self.walk(id, Direction::Outgoing, depth)
    }

    fn walk(&self, id: &str, dir: Direction, depth: Option<usize>) -> Vec<&str> {
        let Some(&start) = self.index.get(id) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.dag.node_count()];
        seen[start.index()] = true;
        let mut frontier = vec![start];
        let mut out = Vec::new();
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for ix in frontier {
                for n in self.dag.neighbors_directed(ix, dir) {
                    if !seen[n.index()] {
                        seen[n.index()] = true;
                        out.push(self.dag[n].as_str());
                        next.push(n);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
        out.sort_unstable();
        out
    }

    /// Node ids in an order where every parent precedes its children, ties
    /// broken by id so the order is deterministic. `Err` holds one cycle, in
    /// path order, first node repeated at the end.
    pub fn topo_order(&self) -> Result<Vec<&str>, Vec<String>> {
        let n = self.dag.node_count();
        let mut indegree = vec![0usize; n];
        for e in self.dag.raw_edges() {
            indegree[e.target().index()] += 1;
        }
        // Smallest id first among the ready nodes; index order is id order
        // when built from a map (`build`), so integers compare instead of ids.
        let by_id = self
            .dag
            .node_indices()
            .zip(self.dag.node_indices().skip(1))
            .all(|(a, b)| self.dag[a] < self.dag[b]);
        let mut rank: Vec<usize> = (0..n).collect();
        if !by_id {
            rank.sort_by(|a, b| self.dag[NodeIndex::new(*a)].cmp(&self.dag[NodeIndex::new(*b)]));
            let mut inverse = vec![0; n];
            for (r, ix) in rank.iter().enumerate() {
                inverse[*ix] = r;
            }
            rank = inverse;
        }
        let mut ready: std::collections::BTreeSet<(usize, usize)> = self
            .dag
            .node_indices()
            .filter(|ix| indegree[ix.index()] == 0)
            .map(|ix| (rank[ix.index()], ix.index()))
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some((_, i)) = ready.pop_first() {
            order.push(self.dag[NodeIndex::new(i)].as_str());
            for c in self
                .dag
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                indegree[c.index()] -= 1;
                if indegree[c.index()] == 0 {
                    ready.insert((rank[c.index()], c.index()));
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err(self.find_cycle())
        }
    }

    /// Children of `ix` inside `members`, largest id first (popped smallest first).
    fn sorted_children(
        &self,
        ix: NodeIndex,
        members: &std::collections::HashSet<NodeIndex>,
    ) -> Vec<NodeIndex> {
        let mut next: Vec<NodeIndex> = self
            .dag
            .neighbors_directed(ix, Direction::Outgoing)
            .filter(|n| members.contains(n))
            .collect();
        next.sort_by(|a, b| self.dag[*b].cmp(&self.dag[*a]));
        next
    }

    /// One cycle as a path `a -> b -> c -> a`, started at its smallest id.
    pub fn find_cycle(&self) -> Vec<String> {
        for scc in petgraph::algo::tarjan_scc(&self.dag) {
            let is_cycle = scc.len() > 1
                || scc
                    .first()
                    .is_some_and(|&ix| self.dag.contains_edge(ix, ix));
            if !is_cycle {
                continue;
            }
            let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
            let Some(&start) = scc.iter().min_by_key(|ix| self.dag[**ix].as_str()) else {
                continue;
            };
            // Depth-first inside the component, smallest id first, until an
            // edge leads back to the start: that path is a cycle.
            let mut path = vec![start];
            let mut visited = std::collections::HashSet::from([start]);
            let mut stack: Vec<Vec<NodeIndex>> = vec![self.sorted_children(start, &members)];
            while let Some(frontier) = stack.last_mut() {
                let Some(&cur) = path.last() else { break };
                if self.dag.contains_edge(cur, start) {
                    break;
                }
                match frontier.pop() {
                    Some(next) if !visited.contains(&next) => {
                        visited.insert(next);
                        path.push(next);
                        let children = self.sorted_children(next, &members);
                        stack.push(children);
                    }
                    Some(_) => {}
                    None => {
                        stack.pop();
                        path.pop();
                    }
                }
            }
            path.push(start);
            return path.into_iter().map(|ix| self.dag[ix].clone()).collect();
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::default();
        for (a, b) in edges {
            for id in [a, b] {
                if !g.index.contains_key(*id) {
                    let ix = g.dag.add_node(id.to_string());
                    g.index.insert(id.to_string(), ix);
                }
            }
            g.dag.update_edge(g.index[*a], g.index[*b], ());
        }
        g
    }

    #[test]
    fn cycle_is_reported_in_path_order_even_past_a_dead_end() {
        // a -> b -> d (d leads nowhere back), b -> c -> a closes the cycle.
        let g = graph(&[
            ("a", "b"),
            ("b", "c"),
            ("b", "bb"),
            ("bb", "b"),
            ("c", "a"),
            ("x", "a"),
        ]);
        let cycle = g.topo_order().unwrap_err();
        assert_eq!(cycle.first(), cycle.last());
        for w in cycle.windows(2) {
            assert!(
                g.dag.contains_edge(g.index[&w[0]], g.index[&w[1]]),
                "{cycle:?}"
            );
        }
    }

    #[test]
    fn topo_order_puts_parents_first_deterministically() {
        let g = graph(&[("b", "c"), ("a", "c"), ("c", "d")]);
        assert_eq!(g.topo_order().unwrap(), vec!["a", "b", "c", "d"]);
        assert_eq!(g.ancestors("d", Some(1)), vec!["c"]);
        assert_eq!(g.ancestors("d", None), vec!["a", "b", "c"]);
        assert_eq!(g.descendants("a", None), vec!["c", "d"]);
    }
}
