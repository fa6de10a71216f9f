import { lazy, Suspense } from 'react';
import { Navigate, Route, Routes, useLocation } from 'react-router';
import { getLanding } from './auth/session';
import { useSession } from './auth/useSession';
import { Loading } from './components/States';
import { I18nProvider } from './i18n/I18nProvider';
import { Shell } from './layout/Shell';

// Every screen is its own chunk, loaded when first opened.
const SignIn = lazy(() => import('./pages/SignIn'));
const AuthCallback = lazy(() => import('./pages/AuthCallback'));
const Home = lazy(() => import('./pages/Home'));
const Contacts = lazy(() => import('./pages/Contacts'));
const ContactCreate = lazy(() => import('./pages/ContactCreate'));
const ContactPage = lazy(() => import('./pages/ContactPage'));
const PipelineBoard = lazy(() => import('./pages/PipelineBoard'));
const DealPage = lazy(() => import('./pages/DealPage'));
const Tasks = lazy(() => import('./pages/Tasks'));
const Companies = lazy(() => import('./pages/Companies'));
const CompanyPage = lazy(() => import('./pages/CompanyPage'));
const Reports = lazy(() => import('./pages/Reports'));
const Imports = lazy(() => import('./pages/Imports'));
const Compliance = lazy(() => import('./pages/Compliance'));
const Settings = lazy(() => import('./pages/Settings'));
const NotFound = lazy(() => import('./pages/NotFound'));

export function App() {
  const session = useSession();
  const location = useLocation();
  return (
    <I18nProvider timeZone={session?.timeZone}>
      <Suspense fallback={<Loading />}>
        {session ? (
          <Routes>
            <Route element={<Shell />}>
              <Route index element={<Home />} />
              <Route path="contacts" element={<Contacts />} />
              <Route path="contacts/new" element={<ContactCreate />} />
              <Route path="contacts/:contactId" element={<ContactPage />} />
              <Route path="pipeline" element={<PipelineBoard />} />
              <Route path="deals/:dealId" element={<DealPage />} />
              <Route path="tasks" element={<Tasks />} />
              <Route path="companies" element={<Companies />} />
              <Route path="companies/:companyId" element={<CompanyPage />} />
              <Route path="reports" element={<Reports />} />
              <Route path="imports" element={<Imports />} />
              <Route path="compliance" element={<Compliance />} />
              <Route path="settings" element={<Settings />} />
              <Route path="sign-in" element={<Navigate to="/" replace />} />
              <Route path="auth/callback" element={<Navigate to={getLanding()} replace />} />
              <Route path="*" element={<NotFound />} />
            </Route>
          </Routes>
        ) : (
          <Routes>
            <Route path="sign-in" element={<SignIn />} />
            <Route path="auth/callback" element={<AuthCallback />} />
            <Route
              path="*"
              element={
                <Navigate
                  to="/sign-in"
                  replace
                  state={{ from: location.pathname + location.search }}
                />
              }
            />
          </Routes>
        )}
      </Suspense>
    </I18nProvider>
  );
}
