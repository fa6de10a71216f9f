import { NotFoundState } from '../components/States';

export default function NotFound() {
  return <NotFoundState />;
}
