/**
 * The charts the benchmark draws, by hand (no plotting dependency): the cumulative
 * distribution of wait times per system in one contended run, on a logarithmic time axis;
 * and panels of small bar charts for the growth scenario.
 */

export interface CdfSeries {
  name: string
  color: string
  /** Ascending wait times in ms. */
  values: number[]
  /** A third legend line, e.g. how many waits never finished. */
  note?: string
}

const W = 900
const H = 470
const M = { left: 64, right: 300, top: 48, bottom: 56 }

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function fmtMs (ms: number): string {
  if (ms >= 1000) return `${+(ms / 1000).toPrecision(3)} s`
  return `${+ms.toPrecision(3)} ms`
}

export function waitCdfSvg (title: string, subtitle: string, series: CdfSeries[]): string {
  const all = series.flatMap(s => s.values)
  const minExp = -1
  const maxExp = Math.max(2, Math.ceil(Math.log10(Math.max(1, ...all))))
  const plotW = W - M.left - M.right
  const plotH = H - M.top - M.bottom
  const x = (ms: number): number => {
    const e = Math.log10(Math.max(ms, 10 ** minExp))
    return M.left + ((e - minExp) / (maxExp - minExp)) * plotW
  }
  const y = (fraction: number): number => M.top + (1 - fraction) * plotH
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  out.push(`<text x="${M.left}" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`)
  out.push(`<text x="${M.left}" y="37" fill="#555">${esc(subtitle)}</text>`)
  // Grid and axes.
  for (let e = minExp; e <= maxExp; e++) {
    const gx = x(10 ** e).toFixed(1)
    out.push(`<line x1="${gx}" y1="${M.top}" x2="${gx}" y2="${M.top + plotH}" stroke="#ddd"/>`)
    out.push(`<text x="${gx}" y="${M.top + plotH + 18}" text-anchor="middle">${esc(fmtMs(10 ** e))}</text>`)
  }
  for (let p = 0; p <= 100; p += 25) {
    const gy = y(p / 100).toFixed(1)
    out.push(`<line x1="${M.left}" y1="${gy}" x2="${M.left + plotW}" y2="${gy}" stroke="#ddd"/>`)
    out.push(`<text x="${M.left - 8}" y="${gy}" text-anchor="end" dominant-baseline="middle">${p} %</text>`)
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`)
  out.push(`<text x="${M.left + plotW / 2}" y="${H - 14}" text-anchor="middle">wait time (log scale; waits under ${fmtMs(10 ** minExp)} drawn at the left edge)</text>`)
  out.push(`<text transform="translate(16 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">share of acquisitions waiting at most x</text>`)
  // One step line per system, at most ~600 points.
  series.forEach((s, index) => {
    const n = s.values.length
    if (n === 0) return
    const step = Math.max(1, Math.floor(n / 600))
    const points: string[] = [`${x(s.values[0]).toFixed(1)},${y(0).toFixed(1)}`]
    for (let j = step - 1; j < n + step - 1; j += step) {
      const k = Math.min(n - 1, j)
      points.push(`${x(s.values[k]).toFixed(1)},${y((k + 1) / n).toFixed(1)}`)
    }
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" stroke-opacity="0.85" points="${points.join(' ')}"/>`)
    const ly = M.top + 10 + index * 52
    const lx = M.left + plotW + 16
    const p50 = s.values[Math.ceil(0.5 * n) - 1]
    const p99 = s.values[Math.ceil(0.99 * n) - 1]
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`)
    out.push(`<text x="${lx + 28}" y="${ly + 4}" font-weight="bold">${esc(s.name)}</text>`)
    out.push(`<text x="${lx + 28}" y="${ly + 19}" fill="#555">p50 ${esc(fmtMs(p50))}, p99 ${esc(fmtMs(p99))}</text>`)
    if (s.note !== undefined) out.push(`<text x="${lx + 28}" y="${ly + 34}" fill="#555">${esc(s.note)}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}

/** One small bar chart: one bar per step of a scale, its value written on it. */
export interface BarPanel {
  title: string
  color: string
  bars: Array<{ label: string, value: number }>
}

const PANEL_W = 460
const PANEL_H = 210
const P = { left: 56, right: 16, top: 30, bottom: 40 }

/** A round axis maximum at or above `max`, close to it (so bars use the panel's height), whose quarters are round too. */
function niceMax (max: number): number {
  if (!(max > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(max))
  return [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10].map(m => m * power).find(m => m >= max) ?? 10 * power
}

function fmtValue (v: number): string {
  if (!Number.isFinite(v)) return '-'
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

/** Axis ticks: as few digits as the value needs (0, 12.5, 25, 37.5, 50). */
function fmtTick (v: number): string {
  return String(+v.toPrecision(3))
}

/** Panels of bar charts in a grid, `columns` wide: e.g. one row per part of a scenario. */
export function barPanelsSvg (title: string, subtitle: string[], panels: BarPanel[], columns: number): string {
  const rows = Math.ceil(panels.length / columns)
  const width = columns * PANEL_W + 20
  const head = 40 + 16 * subtitle.length
  const height = head + rows * PANEL_H
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  out.push(`<text x="16" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`)
  subtitle.forEach((line, i) => out.push(`<text x="16" y="${37 + 16 * i}" fill="#555">${esc(line)}</text>`))
  panels.forEach((panel, index) => {
    const ox = 10 + (index % columns) * PANEL_W
    const oy = head - 6 + Math.floor(index / columns) * PANEL_H
    const plotW = PANEL_W - P.left - P.right
    const plotH = PANEL_H - P.top - P.bottom
    // 15 % headroom so the tallest bar's value stays clear of the panel's title.
    const top = niceMax(1.15 * Math.max(0, ...panel.bars.map(b => Number.isFinite(b.value) ? b.value : 0)))
    const y = (v: number): number => oy + P.top + (1 - v / top) * plotH
    out.push(`<text x="${ox + P.left}" y="${oy + 18}" font-weight="bold">${esc(panel.title)}</text>`)
    for (let k = 0; k <= 4; k++) {
      const v = (top * k) / 4
      const gy = y(v).toFixed(1)
      out.push(`<line x1="${ox + P.left}" y1="${gy}" x2="${ox + P.left + plotW}" y2="${gy}" stroke="#ddd"/>`)
      out.push(`<text x="${ox + P.left - 6}" y="${gy}" text-anchor="end" dominant-baseline="middle">${esc(fmtTick(v))}</text>`)
    }
    const slot = plotW / Math.max(1, panel.bars.length)
    panel.bars.forEach((bar, i) => {
      const bx = ox + P.left + i * slot + slot * 0.2
      const bw = slot * 0.6
      const value = Number.isFinite(bar.value) ? Math.max(0, bar.value) : 0
      out.push(`<rect x="${bx.toFixed(1)}" y="${y(value).toFixed(1)}" width="${bw.toFixed(1)}" height="${(oy + P.top + plotH - y(value)).toFixed(1)}" fill="${panel.color}" fill-opacity="0.85"/>`)
      out.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${(y(value) - 4).toFixed(1)}" text-anchor="middle">${esc(fmtValue(bar.value))}</text>`)
      out.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${oy + P.top + plotH + 16}" text-anchor="middle">${esc(bar.label)}</text>`)
    })
    out.push(`<line x1="${ox + P.left}" y1="${oy + P.top + plotH}" x2="${ox + P.left + plotW}" y2="${oy + P.top + plotH}" stroke="#333"/>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
