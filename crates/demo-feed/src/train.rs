//! L2-regularised logistic regression fitted by Newton's method (iteratively reweighted least
//! squares) with a backtracking line search.
//!
//! Why not a library: `linfa-logistic` was measured on this project's 2-core build machine. It
//! brings ndarray, argmin, sprs and two versions of `rand` (about 60 crates, over a minute to
//! build from scratch) and one fit of this data took about 0.9 s in a debug build, while the
//! scorer is trained in tests and at every demo start. The problem is small (1000 rows, about 60
//! columns, 21 non-zero per row), so exact Newton steps on sparse rows converge in a handful of
//! iterations and take a few milliseconds, with no randomness at all: the same rows give the same
//! coefficients, bit for bit.

/// One encoded row: `(column, value)` pairs for the non-zero columns, in increasing column order.
/// Column 0 is the intercept.
pub(crate) type SparseRow = Vec<(usize, f64)>;

/// The largest step, in any coefficient, below which the fit counts as converged.
const TOLERANCE: f64 = 1e-10;
/// Halvings of a Newton step before giving up on finding a decrease.
const MAX_HALVINGS: u32 = 40;

pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

fn dot(row: &[(usize, f64)], beta: &[f64]) -> f64 {
    row.iter().map(|&(j, x)| beta[j] * x).sum()
}

/// Penalised negative log-likelihood. The intercept (column 0) is not penalised.
fn objective(rows: &[SparseRow], labels: &[bool], beta: &[f64], l2: f64) -> f64 {
    let loss: f64 = rows
        .iter()
        .zip(labels)
        .map(|(row, &good)| {
            let eta = dot(row, beta);
            softplus(eta) - if good { eta } else { 0.0 }
        })
        .sum();
    let penalty: f64 = beta[1..].iter().map(|b| b * b).sum();
    loss + 0.5 * l2 * penalty
}

/// Solves `a x = b` for a symmetric positive definite `a` (row-major, `n` x `n`) by Cholesky
/// factorisation, reading only the lower triangle of `a`. `None` when `a` is not positive
/// definite.
fn solve_spd(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if !(d.is_finite() && d > 0.0) {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    Some(b)
}

/// Fits coefficients for `dims` columns (column 0 being the intercept). `l2` must be positive:
/// full one-hot encoding makes the columns collinear, and the penalty is what makes the
/// solution unique.
pub(crate) fn fit(
    rows: &[SparseRow],
    labels: &[bool],
    dims: usize,
    l2: f64,
    max_iterations: u32,
) -> Result<Vec<f64>, String> {
    let n = rows.len();
    let good = labels.iter().filter(|&&g| g).count();
    if good == 0 || good == n {
        return Err("the data needs both good and bad applications".into());
    }
    let mut beta = vec![0.0; dims];
    // Starting from the base rate saves an iteration or two and changes nothing else.
    #[allow(clippy::cast_precision_loss)]
    let rate = good as f64 / n as f64;
    beta[0] = (rate / (1.0 - rate)).ln();
    let mut current = objective(rows, labels, &beta, l2);
    for _ in 0..max_iterations {
        let mut gradient = vec![0.0; dims];
        let mut hessian = vec![0.0; dims * dims];
        for (row, &label) in rows.iter().zip(labels) {
            let p = sigmoid(dot(row, &beta));
            let residual = p - if label { 1.0 } else { 0.0 };
            let w = p * (1.0 - p);
            // Rows list their columns in increasing order, and the Cholesky solver reads only
            // the lower triangle, so only pairs with k <= j are accumulated.
            for (position, &(j, xj)) in row.iter().enumerate() {
                gradient[j] += residual * xj;
                let wx = w * xj;
                for &(k, xk) in &row[..=position] {
                    hessian[j * dims + k] += wx * xk;
                }
            }
        }
        for j in 1..dims {
            gradient[j] += l2 * beta[j];
            hessian[j * dims + j] += l2;
        }
        let step = solve_spd(hessian, gradient, dims).ok_or_else(|| {
            "the curvature matrix is not positive definite; the regularisation is too weak"
                .to_owned()
        })?;
        let mut scale = 1.0;
        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            let candidate: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - scale * s).collect();
            let value = objective(rows, labels, &candidate, l2);
            if value <= current {
                accepted = Some((candidate, value));
                break;
            }
            scale *= 0.5;
        }
        let largest = step.iter().fold(0.0_f64, |m, s| m.max((scale * s).abs()));
        match accepted {
            Some((candidate, value)) => {
                beta = candidate;
                current = value;
            }
            // No decrease even for a tiny step: we are at the minimum to machine precision.
            None => return Ok(beta),
        }
        if !current.is_finite() {
            return Err("the objective became infinite".into());
        }
        if largest < TOLERANCE {
            return Ok(beta);
        }
    }
    Err(format!("did not converge in {max_iterations} iterations"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] x = [2, 1] => x = [0.5, 0]
        let x = solve_spd(vec![4.0, 2.0, 2.0, 3.0], vec![2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!(solve_spd(vec![1.0, 2.0, 2.0, 1.0], vec![1.0, 1.0], 2).is_none());
    }

    #[test]
    fn fit_reaches_a_stationary_point() {
        // One feature, labels loosely following its sign.
        let xs = [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 0.3];
        let labels = [
            false, false, true, false, true, false, true, true, true, false,
        ];
        let rows: Vec<SparseRow> = xs.iter().map(|&x| vec![(0, 1.0), (1, x)]).collect();
        let l2 = 0.5;
        let beta = fit(&rows, &labels, 2, l2, 50).unwrap();
        let mut gradient = [0.0, l2 * beta[1]];
        for (row, &label) in rows.iter().zip(&labels) {
            let r = sigmoid(dot(row, &beta)) - f64::from(u8::from(label));
            gradient[0] += r;
            gradient[1] += r * row[1].1;
        }
        assert!(gradient.iter().all(|g| g.abs() < 1e-9), "{gradient:?}");
        assert!(beta[1] > 0.0);
    }

    #[test]
    fn one_class_only_is_refused() {
        let rows = vec![vec![(0, 1.0)], vec![(0, 1.0)]];
        assert!(fit(&rows, &[true, true], 1, 1.0, 10).is_err());
    }
}
