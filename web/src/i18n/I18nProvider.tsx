import { useDirection } from '@mantine/core';
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import type { ReactNode } from 'react';
import { formatters, type Formatters } from './format';
import { CATALOGS, direction, interpolate, negotiate, type Language } from './languages';
import { en, type Catalog, type MessageKey } from './messages/en';

const STORAGE_KEY = 'atlas.language';

export interface I18n {
  language: Language;
  setLanguage: (language: Language) => void;
  t: (key: MessageKey, values?: Record<string, string | number>) => string;
  format: Formatters;
  dir: 'ltr' | 'rtl';
}

const I18nContext = createContext<I18n | null>(null);

function initialLanguage(): Language {
  const stored = localStorage.getItem(STORAGE_KEY);
  return negotiate(stored ? [stored] : navigator.languages ?? [navigator.language]);
}

export function I18nProvider({ children, timeZone }: { children: ReactNode; timeZone?: string }) {
  const [language, setLanguageState] = useState<Language>(initialLanguage);
  const [catalog, setCatalog] = useState<{ language: Language; messages: Catalog }>({
    language: 'en',
    messages: en,
  });
  const { setDirection } = useDirection();
  const dir = direction(language);

  useEffect(() => {
    let cancelled = false;
    if (language === 'en') {
      setCatalog({ language, messages: en });
    } else {
      void CATALOGS[language]().then((messages) => {
        if (!cancelled) setCatalog({ language, messages });
      });
    }
    return () => {
      cancelled = true;
    };
  }, [language]);

  // The whole document follows the language: Persian lays everything out right to left.
  useEffect(() => {
    if (catalog.language !== language) return;
    document.documentElement.lang = language;
    document.documentElement.dir = dir;
    setDirection(dir);
  }, [catalog.language, language, dir, setDirection]);

  const setLanguage = useCallback((next: Language) => {
    localStorage.setItem(STORAGE_KEY, next);
    setLanguageState(next);
  }, []);

  const value = useMemo<I18n>(() => {
    const messages = catalog.messages;
    return {
      language,
      setLanguage,
      dir,
      t: (key, values) => interpolate(messages[key] ?? en[key], values),
      format: formatters(catalog.language, timeZone),
    };
  }, [catalog, language, setLanguage, dir, timeZone]);

  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (!value) throw new Error('useI18n outside I18nProvider');
  return value;
}
