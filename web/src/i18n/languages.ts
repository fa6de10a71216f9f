import type { Catalog } from './messages/en';

export const LANGUAGES = [
  { code: 'en', name: 'English', dir: 'ltr' },
  { code: 'de', name: 'Deutsch', dir: 'ltr' },
  { code: 'pt-BR', name: 'Português (Brasil)', dir: 'ltr' },
  { code: 'hi', name: 'हिन्दी', dir: 'ltr' },
  { code: 'gu', name: 'ગુજરાતી', dir: 'ltr' },
  { code: 'fa', name: 'فارسی', dir: 'rtl' },
  { code: 'ru', name: 'Русский', dir: 'ltr' },
] as const;

export type Language = (typeof LANGUAGES)[number]['code'];

export function direction(language: Language): 'ltr' | 'rtl' {
  return LANGUAGES.find((l) => l.code === language)?.dir ?? 'ltr';
}

/** The best supported language for the browser's preferences (e.g. pt-PT → pt-BR). */
export function negotiate(preferred: readonly string[]): Language {
  for (const tag of preferred) {
    const exact = LANGUAGES.find((l) => l.code.toLowerCase() === tag.toLowerCase());
    if (exact) return exact.code;
    const base = tag.split('-')[0]?.toLowerCase();
    const sameBase = LANGUAGES.find((l) => l.code.split('-')[0]?.toLowerCase() === base);
    if (sameBase) return sameBase.code;
  }
  return 'en';
}

/** Catalogs other than English load on demand, outside the initial bundle. */
export const CATALOGS: Record<Exclude<Language, 'en'>, () => Promise<Catalog>> = {
  de: () => import('./messages/de').then((m) => m.de),
  'pt-BR': () => import('./messages/pt-BR').then((m) => m.ptBR),
  hi: () => import('./messages/hi').then((m) => m.hi),
  gu: () => import('./messages/gu').then((m) => m.gu),
  fa: () => import('./messages/fa').then((m) => m.fa),
  ru: () => import('./messages/ru').then((m) => m.ru),
};

export function interpolate(template: string, values: Record<string, string | number> = {}): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
}
