/**
 * The charts the benchmark writes into docs/: what goes in them (kept in the JSON result so
 * --chart-from can redraw them) and where they go. The drawing itself is in svg.ts.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './paths'
import type { SystemName } from './common'
import { COLOR, LABEL } from './report'
import type { GrowthChart } from './report-growth'
import { barPanelsSvg, waitCdfSvg } from './svg'

export interface Chart {
  title: string
  subtitle: string
  series: Array<{ system: SystemName, note: string, waits: number[] }>
}

/** Writes docs/benchmarks-wait.svg; returns its path. */
export function drawChart (chart: Chart): string {
  const svgFile = join(ROOT, 'docs', 'benchmarks-wait.svg')
  writeFileSync(svgFile, waitCdfSvg(chart.title, chart.subtitle, chart.series.map(s => ({ name: LABEL[s.system], color: COLOR[s.system], values: s.waits, note: s.note }))))
  return svgFile
}

/** Writes docs/benchmarks-growth.svg; returns its path. */
export function drawGrowthChart (chart: GrowthChart): string {
  const svgFile = join(ROOT, 'docs', 'benchmarks-growth.svg')
  writeFileSync(svgFile, barPanelsSvg(chart.title, chart.subtitle, chart.panels, 2))
  return svgFile
}
